/** Case 3's section of BENCHMARKS.md, and the figures of one row (standalone.ts prints them). */
import { GAP_MS } from '../latency/case.js';
import { markdownTable, ms, signed } from '../report.js';
import { medianPairedDelta, summarize } from '../stats.js';
import { CHANGE_TIMEOUT_MS, type ManyKeysRow, WARMUP_CHANGES } from './case.js';

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

const cell = (x: number | undefined, fmt: (x: number) => string = ms): string =>
  x === undefined || Number.isNaN(x) ? '' : fmt(x);
const one = (x: number): string => x.toFixed(1);

/** The largest clock offset between the main thread and a watcher thread over `rows`, ms. */
export function largestClockOffset(rows: readonly ManyKeysRow[]): number {
  return Math.max(0, ...rows.flatMap((r) => [r.floor.clock.offsetMs, r.sdk.clock.offsetMs].map(Math.abs)));
}

export function renderManyKeysSection(rows: readonly ManyKeysRow[], changes: number): string {
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
  return [
    '## Case 3: many keys under one prefix',
    '',
    'Keys `<prefix>s<i>/leader` all held by one session. At each size, two worker threads follow the prefix',
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
    "Latency is from the moment the write is sent to each one's report of that key, timestamped in its",
    "own thread (`performance.timeOrigin + performance.now()`; each thread's clock differed from the main",
    `thread's by at most ${largestClockOffset(rows).toFixed(3)} ms). With \`leaders(prefix)\` the timestamp is taken when the map is emitted;`,
    'the harness then compares it with the last one, key by key, to find the changed key: that is in',
    "the SDK's CPU, not in its latency. One key through `leader(key)` is the baseline in the same",
    "harness. CPU is each thread's own (`/proc/thread-self/schedstat`): the floor's or the SDK's alone,",
    "not the writer's or the proxies'; run-queue wait is the time it was ready to run but waited for a",
    "CPU. Consul's CPU is the agent process's: the write and both answers. First load is from the first",
    'read (the SDK: its subscriptions) to every key reported, in the thread. Requests, in-flight reads',
    "and connections are the SDK's (at its proxy), counted after the changes with everything still",
    'followed.',
    '',
    "### Latency from the write to the key's report (ms)",
    '',
    latency,
    '',
    '### Work per change',
    '',
    work,
  ].join('\n');
}
