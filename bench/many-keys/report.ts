/** Case 3's section of BENCHMARKS.md, and the figures of one row (standalone.ts prints them). */
import { GAP_MS } from '../latency/case.js';
import { markdownTable, ms, signed } from '../report.js';
import { medianPairedDelta, percentile, summarize } from '../stats.js';
import {
  CHANGE_TIMEOUT_MS,
  type ManyKeysResult,
  type ManyKeysRow,
  type ManyKeysSplitRow,
  type SplitMeasure,
  WARMUP_CHANGES,
} from './case.js';

export interface ManyKeysFigures {
  readonly floorP50: number | undefined;
  readonly floorP99: number | undefined;
  readonly sdkP50: number | undefined;
  readonly sdkP99: number | undefined;
  /** SDK p50 / floor p50. */
  readonly ratio: number | undefined;
  /** Median over the changes both reported of (SDK − floor), ms. */
  readonly medianDelta: number | undefined;
}

export function figures(row: ManyKeysRow): ManyKeysFigures {
  const floor = summarize([...row.floor.latencies.values()]);
  const sdk = summarize([...row.sdk.latencies.values()]);
  return {
    floorP50: floor?.p50,
    floorP99: floor?.p99,
    sdkP50: sdk?.p50,
    sdkP99: sdk?.p99,
    ratio: floor && sdk ? sdk.p50 / floor.p50 : undefined,
    medianDelta: medianPairedDelta(row.sdk.latencies, row.floor.latencies) ?? undefined,
  };
}

/** p50, p90, p99 of one measurement's latencies (ms), with one query or split. */
export interface SplitFigures {
  readonly p50: number | undefined;
  readonly p90: number | undefined;
  readonly p99: number | undefined;
}

export function splitFigures(measure: SplitMeasure): SplitFigures {
  const sorted = [...measure.sdk.latencies.values()].sort((a, b) => a - b);
  if (sorted.length === 0) return { p50: undefined, p90: undefined, p99: undefined };
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
}

const cell = (x: number | undefined, fmt: (x: number) => string = ms): string =>
  x === undefined || Number.isNaN(x) ? '' : fmt(x);
const one = (x: number): string => x.toFixed(1);

/** The largest clock offset between the main thread and a watcher thread over every row, ms. */
export function largestClockOffset({ rows, http2Rows, http1SplitRows }: ManyKeysResult): number {
  return Math.max(
    0,
    ...rows.flatMap((r) => [r.floor.clock.offsetMs, r.sdk.clock.offsetMs].map(Math.abs)),
    ...[...http2Rows, ...http1SplitRows].flatMap((r) =>
      [r.whole.sdk.clock.offsetMs, r.split.sdk.clock.offsetMs].map(Math.abs),
    ),
  );
}

/** `whole / split` of a figure of both measurements. */
const pair = (row: ManyKeysSplitRow, figure: (m: SplitMeasure) => string): string =>
  `${figure(row.whole)} / ${figure(row.split)}`;

/** How many recursive queries and the keys under each: `1 (10000)`, `60 (1–111–1111)` (min–median–max). */
function queriesCell(queryKeys: readonly number[]): string {
  const count = queryKeys.length;
  const min = queryKeys[0];
  const max = queryKeys[count - 1];
  if (min === undefined || max === undefined) return '0';
  if (count === 1) return `1 (${min})`;
  if (min === max) return `${count} (${min} each)`;
  return `${count} (${min}–${percentile(queryKeys, 50)}–${max})`;
}

/** Split latencies grouped by the keys of the query each change woke: keys, n, p50, p90, max. */
function byWokenQuery(measure: SplitMeasure): (readonly [number, number, number, number, number])[] {
  const groups = new Map<number, number[]>();
  for (const [change, latency] of measure.sdk.latencies) {
    const keys = measure.wokenQueryKeys.get(change) ?? Number.NaN;
    const group = groups.get(keys);
    if (group) group.push(latency);
    else groups.set(keys, [latency]);
  }
  return [...groups]
    .sort(([a], [b]) => a - b)
    .map(([keys, latencies]) => {
      const sorted = latencies.sort((a, b) => a - b);
      return [
        keys,
        sorted.length,
        percentile(sorted, 50),
        percentile(sorted, 90),
        sorted[sorted.length - 1] as number,
      ] as const;
    });
}

/**
 * The tables of rows measured with one query and split: over HTTPS with
 * `http2` (its connections, those its TCP pass-through accepted), or over plain
 * HTTP with `http1` (open at the end and accepted, at its counting proxy).
 */
function splitTables(
  splitRows: readonly ManyKeysSplitRow[],
  transport: 'http2' | 'http1',
): {
  latency: string;
  byQuery: string;
  work: string;
} {
  const latency = markdownTable(
    [
      'keys',
      'followed through',
      'n',
      'one query p50',
      'one query p90',
      'one query p99',
      'split p50',
      'split p90',
      'split p99',
      'split p50 / one query p50',
      'spread p99−p50 one query / split',
      'missed one query / split',
    ],
    splitRows.map((r) => {
      const whole = splitFigures(r.whole);
      const split = splitFigures(r.split);
      const spread = (f: SplitFigures): number | undefined =>
        f.p50 === undefined || f.p99 === undefined ? undefined : f.p99 - f.p50;
      return [
        String(r.keys),
        r.mode,
        String(r.changes),
        cell(whole.p50),
        cell(whole.p90),
        cell(whole.p99),
        cell(split.p50),
        cell(split.p90),
        cell(split.p99),
        cell(
          whole.p50 && split.p50 !== undefined ? split.p50 / whole.p50 : undefined,
          (x) => `${x.toFixed(2)}x`,
        ),
        `${cell(spread(whole))} / ${cell(spread(split))}`,
        pair(r, (m) => String(m.sdk.missed)),
      ];
    }),
  );
  const work = markdownTable(
    [
      'keys',
      'followed through',
      'first load ms one query / split',
      'KV requests / change one query / split',
      'session requests / change one query / split',
      'KV reads in flight one query / split',
      'recursive queries (keys each: min–median–max) one query / split',
      ...(transport === 'http2'
        ? ['connections accepted one query / split']
        : ['connections open at the end one query / split', 'connections accepted one query / split']),
      'SDK CPU ms / change one query / split',
      'run-queue wait ms / change one query / split',
      'Consul CPU ms / change one query / split',
    ],
    splitRows.map((r) => [
      String(r.keys),
      r.mode,
      pair(r, (m) => m.sdk.firstLoadMs.toFixed(0)),
      pair(r, (m) => m.kvRequestsPerChange.toFixed(2)),
      pair(r, (m) => m.sessionRequestsPerChange.toFixed(2)),
      pair(r, (m) => String(m.kvInFlight)),
      pair(r, (m) => queriesCell(m.queryKeys)),
      ...(transport === 'http2'
        ? [
            pair(r, (m) =>
              m.connectionsOpen === m.connectionsAccepted
                ? String(m.connectionsAccepted)
                : `${m.connectionsAccepted} (${m.connectionsOpen} open at the end)`,
            ),
          ]
        : [pair(r, (m) => String(m.connectionsOpen)), pair(r, (m) => String(m.connectionsAccepted))]),
      pair(r, (m) => cell(m.sdk.perChange.cpuMs, one)),
      pair(r, (m) => cell(m.sdk.perChange.runQueueMs, one)),
      pair(r, (m) => cell(m.consulCpuMsPerChange, one)),
    ]),
  );
  const byQuery = markdownTable(
    ['keys', 'followed through', 'keys under the woken query', 'n', 'p50', 'p90', 'max'],
    splitRows.flatMap((r) =>
      byWokenQuery(r.split).map(([keys, n, p50, p90, max]) => [
        String(r.keys),
        r.mode,
        Number.isNaN(keys) ? '?' : String(keys),
        String(n),
        ms(p50),
        ms(p90),
        ms(max),
      ]),
    ),
  );
  return { latency, byQuery, work };
}

/** `n` things, spelled with its plural when not 1. */
const count = (n: number, thing: string, things = `${thing}s`): string =>
  `${n.toLocaleString('en-US')} ${n === 1 ? thing : things}`;

/** `labels` joined, or "every row" when they are all of `total`. */
const whichRows = (labels: readonly string[], total: number): string =>
  labels.length === total && total > 1 ? 'every row' : labels.join(', ');

/**
 * What `http1: true` cost in connections, as measured: those open at the end
 * (its sub-prefix queries, the `?keys` query, idle keep-alive ones) and those
 * accepted from the first read, against one query; rows with the same figures together.
 */
function http1Costs(splitRows: readonly ManyKeysSplitRow[]): string {
  const open = new Map<string, string[]>();
  const accepted = new Map<number, string[]>();
  for (const { keys, mode, whole, split } of splitRows) {
    const label = `${keys.toLocaleString('en-US')} keys through \`${mode}\``;
    const queries = split.queryKeys.length;
    const extra = split.connectionsOpen - queries - 1;
    const inFlight =
      split.kvInFlight === queries
        ? `${split.kvInFlight} KV reads in flight: the \`?keys\` query was between two reads`
        : `${split.kvInFlight} KV reads in flight`;
    const held =
      extra >= 0
        ? `${split.connectionsOpen} = ${queries} for the sub-prefix queries + 1 for the \`?keys\` query + ` +
          `${count(extra, 'idle keep-alive one')} (${inFlight})`
        : `${split.connectionsOpen} for ${count(queries, 'sub-prefix query', 'sub-prefix queries')} (${inFlight})`;
    const withHeld = `${held}, against ${whole.connectionsOpen} with one query`;
    open.set(withHeld, [...(open.get(withHeld) ?? []), label]);
    const more = split.connectionsAccepted - whole.connectionsAccepted;
    accepted.set(more, [
      ...(accepted.get(more) ?? []),
      `${split.connectionsAccepted} against ${whole.connectionsAccepted} through \`${mode}\` at ${keys.toLocaleString('en-US')} keys`,
    ]);
  }
  const total = splitRows.length;
  const atEnd = [...open].map(([held, labels]) => `${held} (${whichRows(labels, total)})`).join('; ');
  const fromFirst = [...accepted]
    .map(([more, rows]) => `${more.toLocaleString('en-US')} more than with one query (${rows.join(', ')})`)
    .join('; ');
  const perKeyFirst = splitRows.some(
    (r) => r.mode === 'leader(key) per key' && r.whole.connectionsAccepted > r.whole.connectionsOpen,
  );
  return (
    `What \`http1: true\` cost in connections (the SDK's, at its proxy): open at the end, ${atEnd}. ` +
    `Accepted from the first read, ${fromFirst}` +
    (perKeyFirst
      ? '; `leader(key) per key` accepts more with one query too: its first keys are read one by one until they coalesce.'
      : '.')
  );
}

export function renderManyKeysSection(result: ManyKeysResult, changes: number): string {
  const { rows, http2Rows, http1SplitRows } = result;
  const latency = markdownTable(
    [
      'keys',
      'followed through',
      'n',
      'floor p50',
      'floor p99',
      'SDK p50',
      'SDK p99',
      'SDK p50 / floor p50',
      'median Δ SDK − floor',
      'missed floor / SDK',
    ],
    rows.map((r) => {
      const f = figures(r);
      return [
        String(r.keys),
        r.mode,
        String(r.changes),
        cell(f.floorP50),
        cell(f.floorP99),
        cell(f.sdkP50),
        cell(f.sdkP99),
        cell(f.ratio, (x) => `${x.toFixed(2)}x`),
        cell(f.medianDelta, signed),
        `${r.floor.missed} / ${r.sdk.missed}`,
      ];
    }),
  );
  const work = markdownTable(
    [
      'keys',
      'followed through',
      'first load ms floor / SDK',
      'KV requests / change',
      'session requests / change',
      'KV reads in flight',
      'connections',
      'floor CPU ms / change',
      'SDK CPU ms / change',
      'run-queue wait ms / change floor / SDK',
      'Consul CPU ms / change',
    ],
    rows.map((r) => [
      String(r.keys),
      r.mode,
      `${r.floor.firstLoadMs.toFixed(0)} / ${r.sdk.firstLoadMs.toFixed(0)}`,
      r.kvRequestsPerChange.toFixed(2),
      r.sessionRequestsPerChange.toFixed(2),
      String(r.kvInFlight),
      String(r.connections),
      cell(r.floor.perChange.cpuMs, one),
      cell(r.sdk.perChange.cpuMs, one),
      `${cell(r.floor.perChange.runQueueMs, one)} / ${cell(r.sdk.perChange.runQueueMs, one)}`,
      cell(r.consulCpuMsPerChange, one),
    ]),
  );
  const http2 = http2Rows.length > 0 ? splitTables(http2Rows, 'http2') : undefined;
  const http1 = http1SplitRows.length > 0 ? splitTables(http1SplitRows, 'http1') : undefined;
  const sizes = (list: readonly number[]): string => {
    const names = [...new Set(list)].map((n) => n.toLocaleString('en-US'));
    return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : (names[0] ?? '');
  };
  return [
    '## Case 3: many keys under one prefix',
    '',
    'Keys `<prefix>s<i>/leader` all held by one session. Over plain HTTP, at each size, two worker threads follow the prefix',
    'side by side. The floor is a bare `http` loop (keep-alive agent, no library) on',
    '`GET /v1/kv/<prefix>?recurse&index=N&wait=60s` (the first read non-blocking, then blocking on',
    '`X-Consul-Index`) that `JSON.parse`s each answer and reports the entries whose `ModifyIndex` is the',
    "answer's index (the key, and the `tag` of its base64 JSON value, or no leader without a `Session`):",
    'the least work to know what changed. The SDK is one `createLeaderDiscovery`, followed either with',
    "`leaders(prefix)` or with one `leader(key)` per key (coalesced by default into the prefix's recursive",
    'query). Each reads through its own instance of the counting proxy of `test/support/proxy.ts` (both',
    'on the main thread, with the writer), so both pay the same hop, and Consul produces a full answer',
    `for each of them per change. Then ${WARMUP_CHANGES} warm-up changes and ${changes} measured ones, one key at a time (a`,
    'release or a re-acquire with a new value, written with `/v1/txn` straight to Consul); the next',
    `change is written once both reported this one (or after ${CHANGE_TIMEOUT_MS / 1000} s: missed), plus ${GAP_MS} to ${2 * GAP_MS} ms.`,
    '',
    ...(http2
      ? [
          `Over HTTPS (${sizes(http2Rows.map((r) => r.keys))} keys): the same keys on a second agent that serves HTTPS only`,
          '(certificates from `consul tls`, as in case 4), followed by the SDK alone (no floor), on the same SDK thread,',
          'with `http2: true`. Each size and way of following is measured twice, one after the other: with',
          '`splitPrefixes: false` ("one query": the prefix\'s recursive query, as above) and with the default',
          '`splitPrefixes` ("split": once an answer of the prefix holds 512 keys or more, up to 64 recursive queries on',
          "sub-prefixes of the prefix plus one `?keys` query of the prefix's key list, all streams of one",
          "connection). Each measurement has its own TCP pass-through (`test/support/tcp-proxy.ts`, Nagle's",
          'algorithm off), which counts the connections it accepts from the first read to the end; the requests, which',
          'it cannot see inside TLS, are the HTTP/2 streams the SDK opened, counted in its thread (a wrapper around',
          "`http2.connect`). Consul's CPU per change is then the write and that one configuration's answers. The same",
          `${WARMUP_CHANGES} warm-up and ${changes} measured changes, written over HTTPS, come in pairs on one key: a release, then`,
          'a re-acquire with a new value, so each measurement has as many of each. "KV reads in flight" with split',
          'counts the sub-prefix queries, and the `?keys` query unless it is between two reads: a wake-up that brings',
          "no new key (a change of value) is rate-limited like any idle wake-up (the SDK's `idleWakeups`), which",
          'also makes the KV requests per change above 1: those are its re-reads. At this pace (the next change',
          `once the last was seen, plus ${GAP_MS} to ${2 * GAP_MS} ms) most changes come without one; a change after a quiet second`,
          "also has Consul answer the prefix's whole key list, a cost these per-change figures mostly leave out.",
          'The recursive queries are those open after the changes',
          "(their prefixes read from the streams' paths) with the keys under each; each change woke the one whose",
          'prefix its key has, and the split latencies are also given by the size of that query. The hop differs',
          "from the plain-HTTP rows' (a TCP pass-through here, an HTTP proxy that parses each request there):",
          'compare the HTTPS rows with each other.',
          '',
        ]
      : []),
    ...(http1
      ? [
          `Over plain HTTP with \`splitPrefixes: { http1: true }\` (${sizes(http1SplitRows.map((r) => r.keys))} keys): after the rows above, on the same`,
          'agent and prefixes, the SDK alone (no floor) on the same SDK thread. Each size and way of following is measured',
          'twice, one after the other: with the default `splitPrefixes` ("one query": over plain HTTP the prefix\'s one',
          'recursive query, as above) and with `splitPrefixes: { http1: true }` ("split": once an answer of the prefix',
          'holds 512 keys or more, up to 16 recursive queries on sub-prefixes plus the `?keys` query, each request on',
          "a connection of its own: Node's `http` agent opens a socket per request in flight). Each measurement has its",
          'own counting proxy (`test/support/proxy.ts`), which counts the requests and the connections it accepts (from',
          'the first read to the end) and holds open at the end; the recursive queries are the reads the proxy holds',
          'after the changes (of each path, the last request, with no answer yet). The changes come in pairs on one',
          "key, as over HTTPS, and Consul's CPU per change is the write and that one configuration's answers. The",
          "agent's `limits.http_max_conns_per_client` is raised to 5000 in this case (Consul's default is 200 for every",
          'process of a host together); Consul sees the proxy, which opens a connection upstream per request in flight too.',
          http1Costs(http1SplitRows),
          '',
        ]
      : []),
    "Latency is from the moment the write is sent to each one's report of that key, timestamped in its",
    "own thread (`performance.timeOrigin + performance.now()`; each thread's clock differed from the main",
    `thread's by at most ${largestClockOffset(result).toFixed(3)} ms). With \`leaders(prefix)\` the timestamp is taken when the map is emitted;`,
    'the harness then compares it with the last one, key by key, to find the changed key: that is in',
    "the SDK's CPU, not in its latency. One key through `leader(key)` is the baseline in the same",
    "harness. CPU is each thread's own (`/proc/thread-self/schedstat`): the floor's or the SDK's alone,",
    "not the writer's or the proxies'; run-queue wait is the time it was ready to run but waited for a",
    "CPU. Consul's CPU is the agent process's: over plain HTTP, the write and both answers. First load is from the first",
    'read (the SDK: its subscriptions) to every key reported, in the thread. Requests, in-flight reads',
    "and connections are the SDK's (at its proxy; over HTTPS, as above), counted after the changes with everything still",
    'followed.',
    '',
    "### Latency from the write to the key's report (ms)",
    '',
    latency,
    '',
    '### Work per change',
    '',
    work,
    ...(http2
      ? [
          '',
          "### HTTPS with `http2: true`: latency from the write to the key's report (ms), one query and split",
          '',
          http2.latency,
          '',
          '### HTTPS with `http2: true`, split: latency by the size of the query the change woke (ms)',
          '',
          http2.byQuery,
          '',
          '### HTTPS with `http2: true`: work per change, one query / split',
          '',
          http2.work,
        ]
      : []),
    ...(http1
      ? [
          '',
          "### Plain HTTP, `splitPrefixes: { http1: true }`: latency from the write to the key's report (ms), one query and split",
          '',
          http1.latency,
          '',
          '### Plain HTTP, `splitPrefixes: { http1: true }`: latency by the size of the query the change woke (ms)',
          '',
          http1.byQuery,
          '',
          '### Plain HTTP, `splitPrefixes: { http1: true }`: work per change, one query / split',
          '',
          http1.work,
        ]
      : []),
  ].join('\n');
}
