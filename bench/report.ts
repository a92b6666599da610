/** BENCHMARKS.md: the run's environment, then a table per case, formatted with the repo's Prettier settings. */
import { format, resolveConfig } from 'prettier';
import type { BenchConfig } from './config.js';
import type { Environment } from './environment.js';
import {
  GAP_MS,
  POLL_SPACING_JITTER_MS,
  POLL_SPACING_MS,
  type LatencyResult,
  type PhaseResult,
  USAGE_BLOCKS,
  type WatcherResult,
} from './latency/case.js';
import type { WatcherKind } from './latency/protocol.js';
import { POLL_INTERVAL_MS } from './latency/watchers/poll.js';
import { METRICS_EXPORT_INTERVAL_MS } from './latency/watchers/sdk.js';
import type { Change } from './latency/writer.js';
import {
  type Interval,
  type Summary,
  medianPairedDelta,
  p50DifferenceInterval,
  percentile,
  summarize,
} from './stats.js';
import { rng } from '../test/support/rng.js';

/** The SDK's goal for case 1: p50 within this factor of the floor's. */
export const SDK_P50_TARGET = 1.2;

const LABELS: Record<WatcherKind, string> = {
  floor: '(a) floor: bare `http` loop',
  'consul-watch': '(b) `consul` `watch()` + `session.info`',
  poll: '(c) poll every 1 s: `kv.get` + `session.info`',
  sdk: '(d) SDK `leader()`',
  'sdk-sessions': '(e) SDK `leader()`, `watchSessions: true`',
  'sdk-metrics': '(f) SDK `leader()`, `meterProvider` (OpenTelemetry SDK, reader every 1 s)',
};

const ms = (x: number): string => x.toFixed(2);
const ratio = (x: number, floor: number): string => `${(x / floor).toFixed(2)}x`;
const signed = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`;

/** The latencies of `watcher` over `changes`, by seq. */
function latenciesOver(watcher: WatcherResult, changes: readonly Change[]): Map<number, number> {
  const subset = new Map<number, number>();
  for (const { seq } of changes) {
    const latency = watcher.latencies.get(seq);
    if (latency !== undefined) subset.set(seq, latency);
  }
  return subset;
}

interface Row {
  readonly watcher: WatcherResult;
  readonly summary: Summary | null;
  readonly latencies: Map<number, number>;
  readonly missed: number;
}

function rowsOf(phase: PhaseResult, changes: readonly Change[]): Row[] {
  return phase.watchers.map((watcher) => {
    const latencies = latenciesOver(watcher, changes);
    return {
      watcher,
      latencies,
      summary: summarize([...latencies.values()]),
      missed: changes.length - latencies.size,
    };
  });
}

/**
 * One row per watcher. Ratios are to `floor`'s summary; the paired delta is
 * given only when `floor` saw the same changes (`paired`).
 */
function table(rows: readonly Row[], floor: Row | undefined, paired: boolean): string {
  const head =
    '| watcher | n | missed | p50 ms | p99 ms | min ms | max ms | spread p99−p50 ms | p50 / floor | p99 / floor | median Δ vs floor ms |';
  const lines = [head, `|${' --- |'.repeat(11)}`];
  for (const row of rows) {
    const s = row.summary;
    const f = floor?.summary;
    const cells = s
      ? [
          ms(s.p50),
          ms(s.p99),
          ms(s.min),
          ms(s.max),
          ms(s.p99 - s.p50),
          f ? ratio(s.p50, f.p50) : '',
          f ? ratio(s.p99, f.p99) : '',
          paired && floor && floor !== row
            ? signed(medianPairedDelta(row.latencies, floor.latencies) ?? Number.NaN)
            : '',
        ]
      : ['', '', '', '', '', '', '', ''];
    lines.push(
      `| ${[LABELS[row.watcher.kind], String(s?.n ?? 0), String(row.missed), ...cells].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

const floorOf = (rows: readonly Row[]): Row | undefined => rows.find((r) => r.watcher.kind === 'floor');

/** The main phase's tables (all changes, acquisitions, releases) and the rows over all changes. */
function mainTables(main: PhaseResult): { text: string; all: Row[] } {
  const all = rowsOf(main, main.changes);
  const sections: [string, Row[], number][] = [['All changes', all, main.changes.length]];
  for (const [title, kind] of [
    ['Acquisitions (a new session takes the key: KV answer, then session info)', 'acquire'],
    ['Releases (the holder releases: KV answer only)', 'release'],
  ] as const) {
    const changes = main.changes.filter((c) => c.kind === kind);
    sections.push([title, rowsOf(main, changes), changes.length]);
  }
  const text = sections
    .map(([title, rows, n]) => `### ${title} — ${n} changes\n\n${table(rows, floorOf(rows), true)}`)
    .join('\n\n');
  return { text, all };
}

/** SDK against the `consul` package's watch: better only when the whole 95% interval of the p50 difference is below 0. */
function comparison(interval: Interval | null): string {
  if (interval === null) return 'no change seen by both';
  if (interval.high < 0) return 'better';
  if (interval.low > 0) return 'not better (slower)';
  return "not better: on par, the difference is within the run's noise";
}

function verdict(all: readonly Row[]): string {
  const get = (kind: WatcherKind): Row | undefined => all.find((r) => r.watcher.kind === kind);
  const floor = get('floor')?.summary;
  const watch = get('consul-watch');
  const sdk = get('sdk');
  const sessions = get('sdk-sessions');
  if (!floor || !watch?.summary || !sdk?.summary || !sessions?.summary) {
    return 'Not every watcher saw changes: no verdict.';
  }
  const lines: string[] = [];
  for (const [name, row] of [
    ['SDK', sdk],
    ['SDK with `watchSessions`', sessions],
  ] as const) {
    const s = row.summary as Summary;
    const r = s.p50 / floor.p50;
    const versus = p50DifferenceInterval(row.latencies, watch.latencies);
    const difference = versus
      ? `, a difference of ${signed(versus.estimate)} ms (95% interval ${signed(versus.low)} to ${signed(versus.high)} ms)`
      : '';
    lines.push(
      `- ${name} p50 / floor p50 = **${r.toFixed(2)}x** (target ≤ ${SDK_P50_TARGET}x): **${r <= SDK_P50_TARGET ? 'met' : 'not met'}**; p50 ${ms(s.p50)} ms vs the \`consul\` package's watch p50 ${ms(watch.summary.p50)} ms${difference}: **${comparison(versus)}**.`,
    );
  }
  return lines.join('\n');
}

function clockNote(phases: readonly PhaseResult[]): string {
  const clocks = phases.flatMap((p) => p.watchers.map((w) => w.clock));
  const offset = Math.max(...clocks.map((c) => Math.abs(c.offsetMs)));
  const rtt = Math.max(...clocks.map((c) => c.rttMs));
  return `Clock check: between the main thread and each worker, |offset| ≤ ${(offset * 1000).toFixed(0)} µs (best ping round trip ≤ ${(rtt * 1000).toFixed(0)} µs).`;
}

/** Per change: HTTP requests, CPU time and run-queue wait of each watcher's thread. */
function workTable(watchers: readonly WatcherResult[]): string {
  const floor = watchers.find((w) => w.kind === 'floor');
  const lines = [
    '| watcher | HTTP requests / change | thread CPU ms / change | CPU / floor | run-queue wait ms / change |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const { kind, perChange } of watchers) {
    const vsFloor = floor ? ratio(perChange.cpuMs, floor.perChange.cpuMs) : '';
    const cells = [perChange.requests.toFixed(2), ms(perChange.cpuMs), vsFloor, ms(perChange.runQueueMs)];
    lines.push(`| ${[LABELS[kind], ...cells].join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * The ratio of the sums of `a` over those of `b` (paired blocks), with a 95% bootstrap
 * interval: blocks resampled with replacement, both sums taken on the same resample.
 */
function ratioOfSums(a: readonly number[], b: readonly number[], resamples = 2000): Interval | null {
  const pairs = a.flatMap((x, i) => {
    const y = b[i];
    return Number.isFinite(x) && y !== undefined && Number.isFinite(y) ? [[x, y] as const] : [];
  });
  if (pairs.length === 0) return null;
  const ratioOf = (sample: readonly (readonly [number, number])[]): number =>
    sample.reduce((sum, [x]) => sum + x, 0) / sample.reduce((sum, [, y]) => sum + y, 0);
  const random = rng(pairs.length);
  const ratios: number[] = [];
  for (let r = 0; r < resamples; r += 1) {
    ratios.push(ratioOf(pairs.map(() => pairs[Math.floor(random() * pairs.length)] as [number, number])));
  }
  ratios.sort((p, q) => p - q);
  return { estimate: ratioOf(pairs), low: percentile(ratios, 2.5), high: percentile(ratios, 97.5) };
}

/** (f) against (d) over all changes of the main phase: latency, CPU, and what metrics cost. */
function metricsSection(main: PhaseResult, all: readonly Row[]): string {
  const none = all.find((r) => r.watcher.kind === 'sdk');
  const on = all.find((r) => r.watcher.kind === 'sdk-metrics');
  if (!none?.summary || !on?.summary) return 'Not both (d) and (f) saw changes: no comparison.';
  const [d, f] = [none.summary, on.summary];
  const [dw, fw] = [none.watcher, on.watcher];
  const cpu = ratioOfSums(
    fw.blocks.map((b) => b.cpuMs),
    dw.blocks.map((b) => b.cpuMs),
  );
  const latency = p50DifferenceInterval(on.latencies, none.latencies);
  const delta = medianPairedDelta(on.latencies, none.latencies);
  const exports = Math.round(fw.perChange.metricExports * main.changes.length);
  const head = [
    'watcher',
    'p50 ms',
    'p99 ms',
    'thread CPU ms / change',
    'run-queue wait ms / change',
    'HTTP requests / change',
  ];
  const row = (label: string, s: Summary, w: WatcherResult): string[] => [
    label,
    ms(s.p50),
    ms(s.p99),
    ms(w.perChange.cpuMs),
    ms(w.perChange.runQueueMs),
    w.perChange.requests.toFixed(2),
  ];
  const ratioRow = [
    '**(f) / (d)**',
    `**${ratio(f.p50, d.p50)}**`,
    ratio(f.p99, d.p99),
    `**${ratio(fw.perChange.cpuMs, dw.perChange.cpuMs)}**`,
    ratio(fw.perChange.runQueueMs, dw.perChange.runQueueMs),
    ratio(fw.perChange.requests, dw.perChange.requests),
  ];
  const blockSize = Math.ceil(main.changes.length / USAGE_BLOCKS);
  const cpuNoise = cpu
    ? `95% bootstrap interval ${cpu.low.toFixed(2)}x to ${cpu.high.toFixed(2)}x over ${fw.blocks.length} blocks of ${blockSize} changes`
    : 'no interval';
  const noise = (interval: Interval | null, neutral: number, more: string, less: string): string => {
    if (!interval) return 'no interval';
    if (interval.low > neutral) return `${more} beyond the run's noise`;
    if (interval.high < neutral) return `${less} beyond the run's noise`;
    return "within the run's noise";
  };
  const cpuVerdict = noise(cpu, 1, 'more CPU', 'less CPU');
  const latencyVerdict = noise(latency, 0, 'slower', 'faster');
  const latencyText = latency
    ? `${signed(latency.estimate)} ms (95% interval ${signed(latency.low)} to ${signed(latency.high)} ms): ${latencyVerdict}`
    : 'no change seen by both';
  const extraUs = (fw.perChange.cpuMs - dw.perChange.cpuMs) * 1000;
  const extra = `${extraUs >= 0 ? '+' : '−'}${Math.abs(extraUs).toFixed(0)} µs`;
  const exported =
    exports > 0
      ? `its reader exported ${exports} times during the measured changes, each export carrying the SDK's metrics`
      : "**no export of its reader carried the SDK's metrics: (f) measured no metrics**";
  return `### OpenTelemetry metrics on: (f) against (d) — ${main.changes.length} changes

(d) has no meter provider registered (OpenTelemetry's global one is the no-op: the SDK
builds no metrics sink), the default a user gets. (f) is (d) given \`meterProvider\`: a
\`MeterProvider\` of \`@opentelemetry/sdk-metrics\` with a \`PeriodicExportingMetricReader\`
that collects every ${METRICS_EXPORT_INTERVAL_MS} ms into an \`InMemoryMetricExporter\` (cumulative), in the
watcher's thread, so its CPU includes the collections (${exported}). Both
ran side by side in the same phase, on the same changes. Thread CPU and run-queue wait as in
"Work per change" below; the CPU ratio's interval comes from the thread's usage read at the
bounds of ${USAGE_BLOCKS} blocks of consecutive changes.

${markdownTable(head, [row(LABELS.sdk, d, dw), row(LABELS['sdk-metrics'], f, fw), ratioRow])}

- p50 of (f) − p50 of (d): ${latencyText}; median over changes of (f)'s latency − (d)'s: ${signed(delta ?? Number.NaN)} ms.
- CPU per change of (f) / (d): ${ratio(fw.perChange.cpuMs, dw.perChange.cpuMs)} (${cpuNoise}): ${cpuVerdict}.

**Cost of metrics:** with an OpenTelemetry SDK \`MeterProvider\` and a reader collecting
every ${METRICS_EXPORT_INTERVAL_MS / 1000} s, the SDK's watcher thread spent ${ms(fw.perChange.cpuMs)} ms of CPU per change against
${ms(dw.perChange.cpuMs)} ms with no provider registered (${ratio(fw.perChange.cpuMs, dw.perChange.cpuMs)}, ${extra} per change, collections
included; ${cpuVerdict}), and its p50 latency was ${ms(f.p50)} ms against ${ms(d.p50)} ms
(${ratio(f.p50, d.p50)}; ${latencyVerdict}).`;
}

export interface HeaderInput {
  readonly config: BenchConfig;
  readonly environment: Environment;
  /** `os.loadavg()` when the run ended. */
  readonly loadAtEnd: readonly number[];
  /** The SDK build measured (bench/sdk-snapshot.ts), and the case during which packages/*\/dist changed, if it did. */
  readonly sdk: { readonly hash: string; readonly rebuiltDuring?: string };
}

const load = (averages: readonly number[]): string => averages.map((x) => x.toFixed(2)).join(' / ');

/** The title, the reading advice and the run's environment. */
export function renderHeader({ config, environment: env, loadAtEnd, sdk }: HeaderInput): string {
  const packages = [...env.packages].map(([name, version]) => `\`${name}\` ${version}`).join(', ');
  const rebuilt = sdk.rebuiltDuring
    ? `; other work rebuilt packages/*/dist during the ${sdk.rebuiltDuring} case, after case 1 had loaded it, and the later cases kept the copy`
    : '; unchanged until the end of the run';
  return `# Benchmarks

Numbers come from **one run on a shared, noisy machine**: read the ratios between watchers
of the same run rather than the absolute values, and expect a few tenths of a millisecond
of run-to-run drift. Each case starts its own Consul agent(s) and stops them; the
percentiles are nearest-rank, and "spread" is p99 − p50 unless a table says otherwise.

| | |
| --- | --- |
| date | ${env.date} |
| command | \`${config.command}\` |
| machine | ${env.cpu}, ${env.cores} cores, ${env.memoryGiB.toFixed(1)} GiB memory; ${env.os} |
| load average (1 / 5 / 15 min) | ${load(env.loadAtStart)} at the start, ${load(loadAtEnd)} at the end |
| Node.js | ${env.node} |
| Consul | ${env.consul} (\`consul agent -dev\` on a loopback address, started by \`scripts/consul-agent.ts\`) |
| packages | ${packages} |
| SDK source | commit ${env.source} |
| SDK build | \`pnpm build\` at the start (dist ${sdk.hash}); cases 2, 3, 4 and 5 load a copy of it taken then${rebuilt} |
`;
}

/** Case 1's section. */
export function renderLatencySection(config: BenchConfig, result: LatencyResult): string {
  const { main, poll } = result;
  const { text: mainText, all } = mainTables(main);
  const floorAll = floorOf(all);
  const pollRows = rowsOf(poll, poll.changes);
  const unexpected = [...main.watchers, ...poll.watchers].map((w) => `${w.kind} ${w.unexpected}`).join(', ');
  return `## Case 1: change-to-emission latency

From the moment a leadership change is sent (the timestamp is taken right before its
\`PUT /v1/kv/<key>?acquire=…\` or \`?release=…\` is written, on the main thread) to the
moment each watcher sees it. Changes alternate: a new session acquires the free key with
the value \`{"seq":k}\`, then that session releases it. A watcher reports the leader's
session id and \`seq\` (or no leader); a change counts as seen by the first report that shows
it. Timestamps are \`performance.timeOrigin + performance.now()\` in the thread that takes
them. Percentiles are nearest-rank. "median Δ vs floor" is the median over changes of
(watcher's latency − floor's latency) for the same change. The SDK is compared with (b) by
the difference of their p50s over all changes, with a 95% interval from a paired bootstrap
(2,000 resamples of the changes, both p50s taken on the same resample): it counts as
better only when the whole interval is below 0.

- Each watcher runs on **its own \`worker_threads\` Worker** (the SDK too); the main thread
  only writes and collects. All blocking watchers use \`wait=60s\`.
- (a) floor: a loop of \`GET /v1/kv/<key>?index=N&wait=60s\` on a keep-alive \`http.Agent\`,
  and \`GET /v1/session/info/<id>\` when the session changes to a new one; no library.
- (b) \`consul.watch({ method: consul.kv.get, options: { key, wait: '60s' } })\` from the
  \`consul\` package, and \`consul.session.info\` on each change that names a session.
- (d) \`createLeaderDiscovery({ consul: { host, port } }).leader(key)\`, default options.
- (e) the same with \`watchSessions: true\`: the SDK also follows \`/v1/session/list\`. The
  writer creates each session (outside the timed part) right before its acquire, so (e) has
  usually read a list naming it by the time the KV answer comes and emits without a session
  read: what it gets every time from contenders that create their session at start-up.
- (f) (d) with OpenTelemetry metrics on: \`meterProvider\` is a \`MeterProvider\` of
  \`@opentelemetry/sdk-metrics\` whose \`PeriodicExportingMetricReader\` exports to an
  \`InMemoryMetricExporter\` every ${METRICS_EXPORT_INTERVAL_MS} ms (see "OpenTelemetry metrics on" below).
- Main phase: ${main.warmup} warm-up changes, then ${main.changes.length} measured; change k+1 is sent
  once (a), (b), (d), (e) and (f) all saw change k (or ${config.timeoutMs} ms passed), plus ${GAP_MS}–${2 * GAP_MS} ms.
  It took ${(main.durationMs / 1000).toFixed(1)} s.
- Polling phase, (c) alone so it never sets the pace: \`setInterval\` every ${POLL_INTERVAL_MS} ms
  doing \`consul.kv.get\` + \`consul.session.info\`; ${poll.changes.length} changes spaced
  ${POLL_SPACING_MS}–${POLL_SPACING_MS + POLL_SPACING_JITTER_MS} ms apart (${(poll.durationMs / 1000).toFixed(1)} s). Its
  ratios are to the floor's over all changes of the main phase.
- ${clockNote([main, poll])} Reports that showed no pending change: ${unexpected}.

Result:

${verdict(all)}

${metricsSection(main, all)}

${mainText}

### Polling phase — ${poll.changes.length} changes

${table(pollRows, floorAll, false)}

### Work per change

Over the measured changes of each phase, divided by their number: HTTP requests sent
(counted on \`diagnostics_channel\` \`http.client.request.start\` in the watcher's thread),
and the time the watcher's JavaScript thread spent on a CPU and runnable but waiting for
one (Linux \`/proc/thread-self/schedstat\`; the V8 helper threads are not counted). The
poller's include its polls between changes.

${workTable([...main.watchers, ...poll.watchers])}
`;
}

/** Formats a whole document with the repository's Prettier settings for `file`. */
export async function formatMarkdown(markdown: string, file: string): Promise<string> {
  const options = (await resolveConfig(file)) ?? {};
  return format(markdown, { ...options, parser: 'markdown' });
}

// Helpers for the other cases' sections.

/** A Markdown table (Prettier aligns it). */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export const SUMMARY_HEAD = ['n', 'p50', 'p99', 'min', 'max', 'spread p99−p50'] as const;

/** n, p50, p99, min, max and spread of `samples`, each formatted; blanks when there are none. */
export function summaryCells(samples: readonly number[], fmt: (x: number) => string = ms): string[] {
  const s = summarize(samples);
  if (!s) return ['0', '', '', '', '', ''];
  return [String(s.n), fmt(s.p50), fmt(s.p99), fmt(s.min), fmt(s.max), fmt(s.p99 - s.p50)];
}

export { ms, signed };
