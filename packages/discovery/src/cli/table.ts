/**
 * Pure rendering of leader states as a table, for `list` and the live view of
 * `watch --prefix`: states, the time and the terminal's size in, lines out.
 */
import type { ConsulReadMeta, ErrorInfo, LeaderState } from '@consul-leader/types';
import { errorPart, jsonReplacer, printable, writeState } from './format.js';

type State = LeaderState<unknown, ErrorInfo>;

export interface TableRow {
  readonly state: State;
  /** When the key's state last changed (the SINCE column). */
  readonly since?: Date;
  /** `since` is a lower bound: the state has not changed since the watch started. */
  readonly sinceAtLeast?: boolean;
}

export interface TableOptions {
  readonly now: Date;
  /** The terminal's width: columns are cut to fit it. Absent: values in full. */
  readonly width?: number;
  /** Colour the STATE column. */
  readonly colour?: boolean;
  /** Add the SINCE column. */
  readonly since?: boolean;
}

const GAP = '  ';
const ELLIPSIS = '…';
const COLOURS = { leader: 32, vacant: 33, invalid: 35, unreachable: 31 } as const;

/** Length in code points (a close enough measure of terminal cells for keys and descriptors). */
function length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    if (unit < 0xdc00 || unit > 0xdfff) n += 1; // a low surrogate ends a code point already counted
  }
  return n;
}

/** The first `n` cells of `text`, ending in "…" when cut. */
export function cutEnd(text: string, n: number): string {
  const chars = Array.from(text);
  if (chars.length <= n) return text;
  if (n <= 0) return '';
  return chars.slice(0, n - 1).join('') + ELLIPSIS;
}

/** The last `n` cells of `text`, starting with "…" when cut (the end of a key says the most). */
export function cutStart(text: string, n: number): string {
  const chars = Array.from(text);
  if (chars.length <= n) return text;
  if (n <= 0) return '';
  return ELLIPSIS + chars.slice(chars.length - (n - 1)).join('');
}

// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/y;
// eslint-disable-next-line no-control-regex
const TRAILING_SGR = /(?:\u001b\[[0-9;]*m)+$/;

/** `text` cut to `n` visible cells (the last one "…" when cut); colour escapes are kept and take none. */
export function cutVisible(text: string, n: number): string {
  if (n <= 0) return '';
  let visible = 0;
  let out = '';
  let coloured = false;
  for (let i = 0; i < text.length;) {
    SGR.lastIndex = i;
    const escape = SGR.exec(text);
    if (escape) {
      out += escape[0];
      coloured = true;
      i += escape[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i) as number);
    if (visible === n) {
      const kept = Array.from(out.replace(TRAILING_SGR, '')).slice(0, -1).join('');
      return `${kept}${ELLIPSIS}${coloured ? '\u001b[0m' : ''}`;
    }
    out += char;
    visible += 1;
    i += char.length;
  }
  return out;
}

function padEnd(text: string, n: number): string {
  return text + ' '.repeat(Math.max(0, n - length(text)));
}

/** A duration as `12s`, `4m05s`, `3h07m` or `2d04h`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

interface Cells {
  readonly key: string;
  readonly status: State['status'];
  readonly leader: string;
  readonly node: string;
  readonly session: string;
}

/**
 * The cells of one state; an `unreachable` key shows what was last known of it. A descriptor
 * that cannot be written as JSON shows as `invalid`, with the reason (see `writeState`).
 */
function cellsOf(state: State): Cells {
  return writeState(state, stateCells);
}

function stateCells(state: State): Cells {
  const shown = state.status === 'unreachable' ? state.lastKnown : state;
  let leader: string;
  let session: { id: string; node: string } | null = null;
  if (shown === null) {
    leader = `(${errorPart((state as { error: ErrorInfo }).error)})`;
  } else if (shown.status === 'leader') {
    leader = JSON.stringify(shown.leader.node, jsonReplacer) ?? String(shown.leader.node);
    session = shown.leader.session;
  } else if (shown.status === 'vacant') {
    leader = `(${shown.reason})`;
  } else {
    leader = `raw=${JSON.stringify(shown.raw)} (${shown.error.message})`;
    session = shown.session;
  }
  return {
    key: printable(state.key),
    status: state.status,
    leader: printable(leader),
    node: session ? printable(session.node) : '-',
    session: session ? printable(session.id.slice(0, 8)) : '-',
  };
}

const HEADERS = ['KEY', 'STATE', 'LEADER', 'CONSUL NODE', 'SESSION', 'SINCE'] as const;
const [KEY, STATE, LEADER, NODE] = [0, 1, 2, 3];

/**
 * Where columns give up cells when the table is wider than the terminal: the
 * descriptor first, then the key (its start), then the node, then the descriptor again.
 */
const SHRINK: readonly (readonly [column: number, min: number])[] = [
  [LEADER, 16],
  [KEY, 20],
  [NODE, 11],
  [LEADER, 6],
  [KEY, 8],
];

/** The table's lines: a header, then one row per state in the given order. */
export function renderTable(rows: readonly TableRow[], options: TableOptions): string[] {
  const columns = options.since ? HEADERS.length : HEADERS.length - 1;
  const table: string[][] = rows.map((row) => {
    const c = cellsOf(row.state);
    const cells = [c.key, c.status, c.leader, c.node, c.session];
    if (options.since) {
      const age = row.since ? formatAge(options.now.getTime() - row.since.getTime()) : '-';
      cells.push(row.since && row.sinceAtLeast ? `>${age}` : age);
    }
    return cells;
  });
  const widths = HEADERS.slice(0, columns).map((header, i) =>
    table.reduce((w, cells) => Math.max(w, length(cells[i] as string)), length(header)),
  );

  const { width } = options;
  if (width !== undefined) {
    let excess = widths.reduce((a, b) => a + b, 0) + GAP.length * (columns - 1) - width;
    for (const [column, min] of SHRINK) {
      if (excess <= 0) break;
      const take = Math.min(excess, Math.max(0, (widths[column] as number) - min));
      widths[column] = (widths[column] as number) - take;
      excess -= take;
    }
  }

  const line = (cells: readonly string[], colourOf?: State['status']): string => {
    const parts = cells.map((cell, i) => {
      const w = widths[i] as number;
      const cut = width === undefined ? cell : i === KEY ? cutStart(cell, w) : cutEnd(cell, w);
      const last = i === cells.length - 1;
      const padded = last ? cut : padEnd(cut, w);
      if (i !== STATE || !colourOf || !options.colour) return padded;
      return `\u001b[${COLOURS[colourOf]}m${cut}\u001b[0m${padded.slice(cut.length)}`;
    });
    const text = parts.join(GAP);
    // The last resort of a very narrow terminal: a line must never wrap.
    return width === undefined ? text : cutVisible(text, width);
  };

  return [
    line(HEADERS.slice(0, columns)),
    ...table.map((cells, i) => line(cells, (rows[i] as TableRow).state.status)),
  ];
}

/** Whether Consul answers, for the live view's header. */
export type ConsulStatus =
  | { readonly kind: 'connecting' }
  | { readonly kind: 'ok'; readonly meta: ConsulReadMeta | null }
  | {
      readonly kind: 'unreachable';
      readonly error: ErrorInfo;
      readonly since: Date;
      /** Failed reads in a row and the delay before the next, when the SDK said. */
      readonly attempt: number | null;
      readonly retryInMs: number | null;
    };

export interface WatchScreenOptions {
  readonly now: Date;
  readonly width: number;
  readonly height: number;
  readonly colour?: boolean;
}

/** Whether Consul answers, and how many keys are in which state; an outage's error on a line of its own. */
function statusLines(status: ConsulStatus, rows: readonly TableRow[], now: Date, colour: boolean): string[] {
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.state.status, (counts.get(row.state.status) ?? 0) + 1);
  const summary =
    `${rows.length} ${rows.length === 1 ? 'key' : 'keys'}` +
    (counts.size === 0 ? '' : `: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`);
  switch (status.kind) {
    case 'connecting':
      return [`Consul: connecting${ELLIPSIS}`];
    case 'ok': {
      const meta = status.meta;
      const raft = meta && !meta.knownLeader ? ' (the answering server knows no Raft leader)' : '';
      return [`Consul: ok${raft}  |  ${summary}`];
    }
    case 'unreachable': {
      const retry =
        status.attempt === null
          ? ''
          : ` (attempt ${status.attempt}${status.retryInMs === null ? '' : `, next in ${status.retryInMs} ms`})`;
      const red = (text: string): string => (colour ? `\u001b[31m${text}\u001b[0m` : text);
      const age = formatAge(now.getTime() - status.since.getTime());
      return [
        `${red(`Consul: unreachable for ${age}`)}${retry}  |  ${summary}`,
        red(`  ${errorPart(status.error)}`),
      ];
    }
  }
}

/**
 * The live view of `watch --prefix`: a title, whether Consul answers, then the
 * table, cut to the terminal's height with a last line saying how many keys are not shown.
 */
export function renderWatchScreen(
  prefix: string,
  status: ConsulStatus,
  rows: readonly TableRow[],
  options: WatchScreenOptions,
): string[] {
  const { now, width, height } = options;
  const colour = options.colour ?? false;
  const fit = (text: string): string => cutVisible(text, width);
  const head = [
    fit(`consul-leader watch --prefix ${printable(prefix)}  ${now.toISOString()}  (Ctrl-C to quit)`),
    ...statusLines(status, rows, now, colour).map(fit),
    '',
  ];
  const table = renderTable(rows, { now, width, colour, since: true });
  const room = Math.max(2, height - head.length);
  if (table.length <= room) return [...head, ...table];
  const shown = room - 1; // the header row and room - 2 keys, then the "more" line
  const hidden = table.length - shown;
  return [
    ...head,
    ...table.slice(0, shown),
    fit(
      `${ELLIPSIS} ${hidden} more ${hidden === 1 ? 'key' : 'keys'} (a taller terminal, or --json, shows all)`,
    ),
  ];
}
