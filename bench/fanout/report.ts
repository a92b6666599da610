/** Case 2's section of BENCHMARKS.md. */
import { markdownTable, ms, summaryCells } from '../report.js';
import { percentile, summarize } from '../stats.js';
import type { FanoutCaseResult, FanoutResult, MeasuredChange } from './case.js';

const kib = (bytes: number): string => (bytes / 1024).toFixed(2);
const mib = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);
const median = (xs: readonly number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/** Mean and range of per-change counts, e.g. `1.00 (1–1)`. */
function countCell(counts: readonly number[]): string {
  const s = summarize(counts);
  if (!s) return '';
  return `${s.mean.toFixed(2)} (${s.min}–${s.max})`;
}

const lastLatencies = (changes: readonly MeasuredChange[]): number[] =>
  changes.flatMap((c) => (c.lastAt === null ? [] : [c.lastAt - c.sentAt]));

function latencyTable(results: readonly FanoutResult[]): string {
  const single = summarize(lastLatencies(results[0]?.changes ?? []));
  const rows = results.map(({ config, changes }) => {
    const last = lastLatencies(changes);
    const firstToLast = changes.flatMap((c) =>
      c.lastAt === null || c.firstAt === null ? [] : [c.lastAt - c.firstAt],
    );
    const s = summarize(last);
    const spreadOut = summarize(firstToLast);
    return [
      config.name,
      ...summaryCells(last),
      String(changes.length - last.length),
      spreadOut ? `${ms(spreadOut.p50)} / ${ms(spreadOut.max)}` : '',
      s && single ? `${(s.p50 / single.p50).toFixed(2)}x` : '',
      ms(median(changes.map((c) => c.cpuMs))),
    ];
  });
  return markdownTable(
    [
      'subscribers',
      'n',
      'p50 ms',
      'p99 ms',
      'min ms',
      'max ms',
      'spread p99−p50 ms',
      'missed',
      'first → last subscriber p50 / max ms',
      'p50 / 1 subscriber',
      'process CPU ms / change (median)',
    ],
    rows,
  );
}

function requestTable(results: readonly FanoutResult[]): string {
  const rows = results.map(({ config, changes, maxConnections }) => {
    const acquisitions = changes.filter((c) => c.kind === 'acquire');
    const releases = changes.filter((c) => c.kind === 'release');
    const perSubscriber = changes.map((c) => c.emissions / config.subscribers);
    return [
      config.name,
      String(acquisitions.length),
      countCell(acquisitions.map((c) => c.requests.kv)),
      countCell(acquisitions.map((c) => c.requests.session)),
      String(releases.length),
      countCell(releases.map((c) => c.requests.kv)),
      countCell(releases.map((c) => c.requests.session)),
      String(changes.reduce((sum, c) => sum + c.requests.other, 0)),
      countCell(perSubscriber),
      String(maxConnections),
    ];
  });
  return markdownTable(
    [
      'subscribers',
      'acquisitions',
      'KV reads / acquisition',
      'session reads / acquisition',
      'releases',
      'KV reads / release',
      'session reads / release',
      'other requests (all changes)',
      'emissions / subscriber / change',
      'connections at the proxy (max)',
    ],
    rows,
  );
}

function memoryTable(results: readonly FanoutResult[]): string {
  const deltas = (r: FanoutResult): number[] => r.rounds.map((m) => m.full.heapUsed - m.empty.heapUsed);
  const one = results.find((r) => r.config.subscribers === 1);
  const oneDelta = one ? median(deltas(one)) : Number.NaN;
  const rows = results.map((r) => {
    const n = r.config.subscribers;
    const perSubscriber = deltas(r).map((d) => d / n);
    const marginal = n > 1 ? (median(deltas(r)) - oneDelta) / (n - 1) : Number.NaN;
    return [
      r.config.name,
      String(r.rounds.length),
      mib(median(r.rounds.map((m) => m.empty.heapUsed))),
      mib(median(r.rounds.map((m) => m.full.heapUsed))),
      `${kib(median(perSubscriber))} (${kib(Math.min(...perSubscriber))}–${kib(Math.max(...perSubscriber))})`,
      Number.isNaN(marginal) ? '' : kib(marginal),
      mib(median(r.rounds.map((m) => m.full.rss))),
      ms(median(r.rounds.map((m) => m.subscribeMs))),
    ];
  });
  return markdownTable(
    [
      'subscribers',
      'rounds',
      'heap, 0 subscribers MiB',
      'heap, N subscribers MiB',
      'heap / subscriber KiB, median (min–max)',
      'beyond the first: (Δ(N) − Δ(1)) / (N − 1) KiB',
      'RSS, N subscribers MiB',
      'subscribe N + first value ms',
    ],
    rows,
  );
}

function verdict(results: readonly FanoutResult[]): string {
  const lines = results.map(({ config, changes }) => {
    const acquisitions = changes.filter((c) => c.kind === 'acquire');
    const releases = changes.filter((c) => c.kind === 'release');
    const exact =
      acquisitions.every((c) => c.requests.kv === 1 && c.requests.session <= 1 && c.requests.other === 0) &&
      releases.every((c) => c.requests.kv === 1 && c.requests.session === 0 && c.requests.other === 0);
    const kv = changes.reduce((sum, c) => sum + c.requests.kv, 0) / changes.length;
    const session = acquisitions.reduce((sum, c) => sum + c.requests.session, 0) / acquisitions.length;
    return `- ${config.name}: ${kv.toFixed(2)} KV reads per change, ${session.toFixed(2)} session reads per new session: **${exact ? 'met on every change' : 'not met on every change'}**.`;
  });
  return lines.join('\n');
}

export function renderFanoutSection(result: FanoutCaseResult): string {
  const { settings, results } = result;
  const perConfig = settings.rounds * settings.changesPerRound;
  const durations = results.map((r) => `${r.config.name} ${(r.durationMs / 1000).toFixed(1)} s`).join(', ');
  return `## Case 2: fan-out

One \`createLeaderDiscovery\` (default options, \`wait=60s\`) follows one key for N
subscribers: all subscribed to **the same** \`leader(key)\` observable, or (last row) each
calling \`leader(key)\` itself. The SDK reads Consul through the counting proxy of
\`test/support/proxy.ts\` (in the bench's main process), so every request Consul receives
from it is counted; the writer writes to the agent directly.

- Each configuration runs in **its own child process** started with \`--expose-gc\`, which
  holds the discovery, the N subscribers and the writer (bare \`http\`, as in case 1), so the
  write's timestamp and the emissions are on one clock. Each subscriber is its own closure
  that checks the value it receives.
- Changes alternate as in case 1: a new session (lock-delay 0s) acquires the free key with
  \`{"seq":k}\`, then releases it. Latency is from right before the PUT is written to the
  moment **the last of the N subscribers** receives the change (and, for the spread of the
  fan-out itself, from the first subscriber to the last).
- ${settings.rounds} rounds per configuration, after a warm-up round that is not reported. Each
  round: heap with 0 subscribers, subscribe N (and wait for every first value),
  ${settings.warmupPerRound} warm-up changes, heap with N, ${settings.changesPerRound} measured changes, unsubscribe all:
  ${perConfig} measured changes per configuration, as many acquisitions as releases. The next
  change is sent ${settings.gapMs}–${2 * settings.gapMs} ms after the last subscriber saw the previous one, once the
  SDK's next blocking read is waiting at the proxy (\`inFlight('/v1/kv/')\`); a change's
  requests are those the proxy received from its write to that point. A change not seen
  by every subscriber within ${settings.timeoutMs} ms is missed.
- Heap: \`heapUsed\` after \`gc()\` (three collections 30 ms apart, then one more). "Heap /
  subscriber" is (heap with N − heap with 0) / N, per round: for N = 1 it is the whole
  cost of a followed key (the blocking query, its socket, the session cache) plus one
  subscriber; "beyond the first" takes that out.
- Time per configuration: ${durations}.

Target: exactly one KV request per change, plus at most one session-info request per new
session.

${verdict(results)}

### Latency from the write to the last subscriber's emission

${latencyTable(results)}

### Requests Consul received per change (mean, min–max over changes)

${requestTable(results)}

### Memory per subscriber

${memoryTable(results)}
`;
}
