/** Pure formatting of leader states for `consul-leader`: human lines and JSON lines. */
import { type ErrorInfo, type Leader, type LeaderState, bigintReplacer } from '@consul-leader/types';
import { writableState } from '../state/writable-state.js';

type State = LeaderState<unknown, ErrorInfo>;

/** `{ code, message, status? }` of an error, whatever it is. */
export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const { code, status } = error as Error & { code?: unknown; status?: unknown };
    const info = { code: typeof code === 'string' ? code : error.name, message: error.message };
    return typeof status === 'number' ? { ...info, status } : info;
  }
  return { code: 'ERROR', message: String(error) };
}

/** JSON.stringify replacer: bigints as decimal strings, errors as `{ code, message, status? }`. */
export function jsonReplacer(key: string, value: unknown): unknown {
  if (value instanceof Error) return errorInfo(value);
  return bigintReplacer(key, value);
}

/**
 * The same key as `invalid` (an `unwritable` issue, the raw value), after writing `state`
 * threw `error`: its descriptor, or its last known one, cannot be written as JSON (nested too
 * deeply for `JSON.stringify`, say). Throws `error` again when the descriptor is not the cause.
 */
function asUnwritable(state: State, error: unknown): State {
  const checked = writableState(state, jsonReplacer);
  if (checked !== state) return checked;
  throw error;
}

/**
 * `write(state)`: every state the CLI prints (a line, a JSON line, a table row) goes
 * through here. When writing it throws because its descriptor cannot be written as JSON,
 * the key is written as `invalid`, with the reason and the raw value, and the output goes
 * on: one such key hides no other.
 */
export function writeState<R>(state: State, write: (state: State) => R): R {
  try {
    return write(state);
  } catch (error) {
    return write(asUnwritable(state, error));
  }
}

/** The JSON of a state (`list --json`'s items, `get --json` of an invalid value). */
export function stateJson(state: State): string {
  return writeState(state, (shown) => JSON.stringify(shown, jsonReplacer));
}

/** One JSON line of a `watch` state, with the time it was received. */
export function stateJsonLine(state: State, time: Date): string {
  return writeState(state, (shown) => JSON.stringify({ time: time.toISOString(), ...shown }, jsonReplacer));
}

/** The JSON array of states of `list --json`: each state written on its own (see `writeState`). */
export function statesJson(states: readonly State[]): string {
  return `[${states.map(stateJson).join(',')}]`;
}

/**
 * The JSON of a leader (or `null`), for `get --json`. Throws when the descriptor cannot be
 * written: call it inside `writeState`.
 */
export function leaderJson(leader: Leader<unknown> | null): string {
  return JSON.stringify(leader, jsonReplacer);
}

/** Control characters (terminal escapes included) from Consul or the user, made visible. */
export function printable(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.charCodeAt(0);
    if (code === 0x0a) out += '\\n';
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return out;
}

const COLOURS = { leader: 32, vacant: 33, invalid: 35, unreachable: 31 } as const;

function label(status: State['status'], colour: boolean): string {
  return colour ? `\u001b[${COLOURS[status]}m${status}\u001b[0m` : status;
}

/** The descriptor as one line of JSON (a text descriptor shows as a quoted string). */
function descriptor(node: unknown): string {
  return JSON.stringify(node, jsonReplacer) ?? String(node);
}

function sessionPart(session: { id: string; node: string }): string {
  return `session=${session.id} node=${printable(session.node)}`;
}

/** `CODE (status): message`, printable. */
export function errorPart(error: ErrorInfo): string {
  return `${error.code}${error.status === undefined ? '' : ` (${error.status})`}: ${printable(error.message)}`;
}

function line(time: Date, status: State['status'], key: string, colour: boolean, parts: string[]): string {
  return [`${time.toISOString()} ${label(status, colour)}`, printable(key), ...parts].join('  ');
}

/**
 * The human line of a leader: time, key, descriptor, session and its Consul node. Throws when
 * the descriptor cannot be written as JSON: call it inside `writeState` (as `stateLine` does).
 */
export function leaderLine(leader: Leader<unknown>, time: Date, colour = false): string {
  return line(time, 'leader', leader.key, colour, [descriptor(leader.node), sessionPart(leader.session)]);
}

/** The human line of any state (a descriptor that cannot be written as JSON: `invalid`). */
export function stateLine(state: State, time: Date, colour = false): string {
  return writeState(state, (shown) => humanLine(shown, time, colour));
}

function humanLine(state: State, time: Date, colour: boolean): string {
  switch (state.status) {
    case 'leader':
      return leaderLine(state.leader, time, colour);
    case 'vacant':
      return line(time, 'vacant', state.key, colour, [`reason=${state.reason}`]);
    case 'invalid':
      return line(time, 'invalid', state.key, colour, [errorPart(state.error), sessionPart(state.session)]);
    case 'unreachable': {
      const last = state.lastKnown === null ? 'none' : state.lastKnown.status;
      return line(time, 'unreachable', state.key, colour, [
        errorPart(state.error),
        `attempt=${state.attempt} retry-in=${state.retryInMs}ms last-known=${last}`,
      ]);
    }
  }
}

/** The human line of `get` when the key has no leader. */
export function noLeaderLine(key: string, time: Date): string {
  return `${time.toISOString()} no leader  ${printable(key)}`;
}
