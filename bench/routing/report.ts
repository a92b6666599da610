/** Case 6's section of BENCHMARKS.md. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SUMMARY_HEAD, markdownTable, ms, summaryCells } from '../report.js';
import {
  BACKENDS,
  CRASH_LOCK_DELAY,
  CRASH_WAIT_FOR_LEADER,
  type Comparison,
  type CrashResult,
  LOAD_WARMUP_MS,
  QUIET_MARGIN_MS,
  REJOIN_MS,
  type Records,
  type Round,
  type RoutingResult,
  STEP_LOCK_DELAY,
  STEP_WAIT_FOR_LEADER,
  type StepDownResult,
  TTL,
} from './case.js';

/** The targets of issue #15 for `leaderDispatcher` against a plain undici Agent. */
export const P50_TARGET = 1.05;
export const THROUGHPUT_TARGET = 0.95;

const TTL_HALF = `${Number.parseInt(TTL, 10) / 2} s`;
const x = (r: number): string => `${r.toFixed(2)}x`;
/** Sub-millisecond latencies: three decimals (µs). */
const ms3 = (v: number): string => v.toFixed(3);
const loads = (averages: readonly number[]): string => averages.map((v) => v.toFixed(2)).join(' / ');
const signedMs = (v: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;

function undiciVersion(): string {
  try {
    const file = createRequire(import.meta.url).resolve('undici/package.json');
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof parsed.version === 'string' ? parsed.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

// ---- order statistics of typed arrays (nearest rank, as bench/stats.ts)

function sorted(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all.sort();
}

function pct(values: Float64Array, p: number): number {
  if (values.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * values.length));
  return values[Math.min(rank, values.length) - 1] as number;
}

// ---- (a) and (b)

interface SideStats {
  readonly requests: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly perSecond: number;
  readonly loadCpuUs: number;
  readonly backendCpuUs: number;
  readonly proxyCpuUs: number;
}

function sideStats(rounds: readonly Round[]): SideStats {
  const latencies = sorted(rounds.map((r) => r.latencies));
  const sum = (f: (r: Round) => number): number => rounds.reduce((s, r) => s + f(r), 0);
  const requests = latencies.length;
  return {
    requests,
    failed: sum((r) => r.failures),
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    perSecond: requests / (sum((r) => r.durationMs) / 1000),
    loadCpuUs: sum((r) => r.loadCpuUs) / requests,
    backendCpuUs: sum((r) => r.backendCpuUs) / requests,
    proxyCpuUs: sum((r) => r.proxyCpuUs) / requests,
  };
}

/** Requests/s of the SDK side over the plain side's, pair by pair. */
function pairRatios(c: Comparison): number[] {
  const rate = (r: Round): number => r.latencies.length / r.durationMs;
  return c.sdk.map((r, i) => rate(r) / rate(c.plain[i] as Round));
}

interface Ratios {
  readonly concurrency: number;
  readonly p50: number;
  readonly p99: number;
  readonly perSecond: number;
  /** The median over the pairs of each pair's requests/s ratio: a round slowed by other work weighs less. */
  readonly pairMedian: number;
}

const median = (values: readonly number[]): number => pct(Float64Array.from(values).sort(), 50);

function ratiosOf(c: Comparison): Ratios {
  const plain = sideStats(c.plain);
  const sdk = sideStats(c.sdk);
  return {
    concurrency: c.concurrency,
    p50: sdk.p50 / plain.p50,
    p99: sdk.p99 / plain.p99,
    perSecond: sdk.perSecond / plain.perSecond,
    pairMedian: median(pairRatios(c)),
  };
}

function comparisonTable(
  comparisons: readonly Comparison[],
  labels: [string, string],
  proxy: boolean,
): string {
  const head = [
    'in flight',
    'client',
    'requests',
    'failed',
    'p50 ms',
    'p99 ms',
    'requests/s',
    'load CPU µs/req',
    ...(proxy ? ['proxy CPU µs/req'] : []),
    'backend CPU µs/req',
    'p50 ratio',
    'p99 ratio',
    'req/s ratio',
    'req/s ratio by pair: median (min–max)',
    'load CPU ratio',
    ...(proxy ? ['proxy CPU ratio'] : []),
  ];
  const rows: string[][] = [];
  for (const c of comparisons) {
    const plain = sideStats(c.plain);
    const sdk = sideStats(c.sdk);
    const pairs = pairRatios(c);
    const cells = (s: SideStats, label: string, ratios: boolean): string[] => [
      String(c.concurrency),
      label,
      String(s.requests),
      String(s.failed),
      ms3(s.p50),
      ms3(s.p99),
      s.perSecond.toFixed(0),
      s.loadCpuUs.toFixed(0),
      ...(proxy ? [s.proxyCpuUs.toFixed(0)] : []),
      s.backendCpuUs.toFixed(0),
      ratios ? x(s.p50 / plain.p50) : '',
      ratios ? x(s.p99 / plain.p99) : '',
      ratios ? x(s.perSecond / plain.perSecond) : '',
      ratios ? `${x(median(pairs))} (${x(Math.min(...pairs))}–${x(Math.max(...pairs))})` : '',
      ratios ? x(s.loadCpuUs / plain.loadCpuUs) : '',
      ...(proxy ? [ratios ? x(s.proxyCpuUs / plain.proxyCpuUs) : ''] : []),
    ];
    rows.push(cells(plain, labels[0], false), cells(sdk, labels[1], true));
  }
  return markdownTable(head, rows);
}

const met = (ok: boolean): string => (ok ? '**met**' : '**not met**');

function verdictLines(comparisons: readonly Comparison[], name: string, against: string): string[] {
  return comparisons.map((c) => {
    const r = ratiosOf(c);
    return `- ${name}, ${r.concurrency} in flight: p50 **${r.p50.toFixed(3)}x** ${against}'s (target ≤ ${P50_TARGET}x): ${met(r.p50 <= P50_TARGET)}; requests/s **${r.pairMedian.toFixed(3)}x** by the median pair, ${r.perSecond.toFixed(3)}x over all rounds (target ≥ ${THROUGHPUT_TARGET}x): ${met(r.pairMedian >= THROUGHPUT_TARGET)}.`;
  });
}

// ---- continuous load

interface Window {
  readonly from: number;
  readonly to: number;
}

/** The first time from `after` on that the handle showed `session`. */
function shown(records: Records, after: number, session: string | null): number | undefined {
  return records.changes.find((c) => c.at >= after && c.session === session)?.at;
}

interface Group {
  readonly latencies: Float64Array;
  readonly failed: number;
}

/** The requests (latency, failed) that `pick` takes, by index. */
function group(records: Records, pick: (i: number) => boolean): Group {
  const latencies: number[] = [];
  let failed = 0;
  for (let i = 0; i < records.start.length; i += 1) {
    if (!pick(i)) continue;
    latencies.push((records.end[i] as number) - (records.start[i] as number));
    if (records.ok[i] !== 1) failed += 1;
  }
  return { latencies: Float64Array.from(latencies).sort(), failed };
}

const overlaps = (records: Records, i: number, w: Window): boolean =>
  (records.start[i] as number) < w.to && (records.end[i] as number) > w.from;

const GROUP_HEAD = ['requests', 'n', 'failed', 'p50 ms', 'p99 ms', 'max ms'];

function groupCells(label: string, g: Group): string[] {
  const max = g.latencies.length > 0 ? (g.latencies[g.latencies.length - 1] as number) : Number.NaN;
  return [
    label,
    String(g.latencies.length),
    String(g.failed),
    ms(pct(g.latencies, 50)),
    ms(pct(g.latencies, 99)),
    ms(max),
  ];
}

function addedCells(label: string, slow: Group, steady: Group): string[] {
  const max = (g: Group): number => g.latencies[g.latencies.length - 1] ?? Number.NaN;
  return [
    label,
    '',
    '',
    signedMs(pct(slow.latencies, 50) - pct(steady.latencies, 50)),
    signedMs(pct(slow.latencies, 99) - pct(steady.latencies, 99)),
    signedMs(max(slow) - max(steady)),
  ];
}

function failedCount(records: Records): number {
  return records.ok.reduce((n, ok) => n + (ok === 1 ? 0 : 1), 0);
}

function errorsNote(records: Records): string {
  if (records.errors.length === 0) return '';
  return `\n\nFirst failures: ${records.errors.map((e) => `\`${e.replaceAll('`', "'")}\``).join('; ')}.`;
}

interface StepAnalysis {
  readonly text: string;
  readonly failed: number;
  readonly total: number;
  readonly steady: Group;
  readonly across: Group;
}

function stepDownSection(result: StepDownResult, concurrency: number): StepAnalysis {
  const { records, steps } = result;
  const windows: Window[] = [];
  const saw: (number | null)[] = [];
  for (const s of steps) {
    const at = shown(records, s.downAt, s.session);
    saw.push(at ?? null);
    windows.push({ from: s.downAt, to: at ?? s.acquiredAt });
  }
  const warm = result.loadStartedAt + LOAD_WARMUP_MS;
  const inWindow = (i: number): boolean => windows.some((w) => overlaps(records, i, w));
  const across = group(records, inWindow);
  const steady = group(records, (i) => !inWindow(i) && (records.start[i] as number) >= warm);
  const perStep = windows.map((w) => group(records, (i) => overlaps(records, i, w)));
  const measures: [string, (number | null)[]][] = [
    ['step-down → its `PUT ?release` sent', steps.map((s) => s.releaseSentAt - s.downAt)],
    ["step-down → the next leader's `PUT ?acquire` sent", steps.map((s) => s.acquiredAt - s.downAt)],
    [
      "step-down → the load's handle shows the next leader",
      saw.map((t, i) => (t === null ? null : t - (steps[i]?.downAt ?? 0))),
    ],
    [
      "next leader's acquire → the handle shows it",
      saw.map((t, i) => (t === null ? null : t - (steps[i]?.acquiredAt ?? 0))),
    ],
    ['requests in flight across one step-down (count)', perStep.map((g) => g.latencies.length)],
    ['slowest request across one step-down', perStep.map((g) => g.latencies[g.latencies.length - 1] ?? null)],
  ];
  const measureRows = measures.map(([label, values]) => {
    const seen = values.filter((v): v is number => v !== null);
    const fmt = label.endsWith('(count)') ? (v: number): string => v.toFixed(0) : ms;
    return [label, ...summaryCells(seen, fmt), String(values.length - seen.length)];
  });
  const failed = failedCount(records);
  const total = records.start.length;
  const text = `### Planned step-downs — ${steps.length}, lock-delay ${STEP_LOCK_DELAY}, \`waitForLeader: '${STEP_WAIT_FOR_LEADER}'\`, ${concurrency} in flight

${total} requests over ${(result.durationMs / 1000).toFixed(1)} s, **${failed} failed**; the old leaders answered ${result.misdirected} of them 421 after stepping down, and the dispatcher sent each of those again to the next leader. A request is "across a step-down" when it was in flight at any moment from the step-down (the old leader answers 421 from then on) until the load process's handle showed the next leader; "steady" are the others, without the first ${LOAD_WARMUP_MS} ms of the load.

${markdownTable(GROUP_HEAD, [groupCells('steady state', steady), groupCells('in flight across a step-down', across), addedCells('across − steady', across, steady)])}

${markdownTable(['per step-down (ms)', ...SUMMARY_HEAD, 'missed'], measureRows)}${errorsNote(records)}
`;
  return { text, failed, total, steady, across };
}

interface CrashAnalysis {
  readonly text: string;
  readonly failed: number;
  readonly recoveredMs: number;
}

function crashSection(crash: CrashResult, concurrency: number): CrashAnalysis {
  const { records, killAt, lastRenewalAt, next } = crash;
  const released = shown(records, killAt, null);
  const saw = shown(records, killAt, next.session);
  // Nothing can succeed between the kill and the next leader's acquire.
  let firstOk = Number.POSITIVE_INFINITY;
  for (let i = 0; i < records.end.length; i += 1) {
    const end = records.end[i] as number;
    if (records.ok[i] === 1 && end >= next.at && end < firstOk) firstOk = end;
  }
  const okEnds = Float64Array.from(records.end.filter((_, i) => records.ok[i] === 1)).sort();
  let stretch = 0;
  for (let i = 1; i < okEnds.length; i += 1)
    stretch = Math.max(stretch, (okEnds[i] as number) - (okEnds[i - 1] as number));
  const warm = crash.loadStartedAt + LOAD_WARMUP_MS;
  const before = group(
    records,
    (i) => (records.end[i] as number) <= killAt && (records.start[i] as number) >= warm,
  );
  // The requests that waited: in flight when the next leader took the key.
  const across = group(records, (i) => overlaps(records, i, { from: next.at, to: next.at }));
  const after = group(records, (i) => (records.start[i] as number) >= firstOk);
  const since = (t: number | undefined, from = killAt): string =>
    t === undefined ? 'not seen' : ms(t - from);
  const failed = failedCount(records);
  const text = `### Crash — SIGKILL of the leader's process: TTL ${TTL}, lock-delay ${CRASH_LOCK_DELAY}, \`waitForLeader: '${CRASH_WAIT_FOR_LEADER}'\`, ${concurrency} in flight

Three other backends on another key, each with a session of TTL ${TTL} (renewed every ${TTL_HALF}) and lock-delay ${CRASH_LOCK_DELAY}. The leader's process was killed ${((killAt - lastRenewalAt) / 1000).toFixed(2)} s after its last renewal. Consul invalidates a TTL session 2 × TTL after its last renewal on this agent (case 5), then the key is released; the others' acquires are refused for the lock-delay, then one takes the key. Meanwhile every request gets a refused (or reset) connection from the dead leader and waits in the dispatcher for a leader with another session. ${records.start.length} requests, **${failed} failed**.

| from → to | ms |
| --- | --- |
| leader's last renewal → kill | ${ms(killAt - lastRenewalAt)} |
| kill → the load's handle shows the key released | ${since(released)} |
| leader's last renewal → the handle shows the key released | ${since(released, lastRenewalAt)} |
| kill → the next leader's \`PUT ?acquire\` sent (after the lock-delay) | ${since(next.at)} |
| kill → the handle shows the next leader | ${since(saw)} |
| kill → first successful answer (requests succeed again) | ${since(Number.isFinite(firstOk) ? firstOk : undefined)} |
| longest stretch without a successful answer | ${ms(stretch)} |

${markdownTable(GROUP_HEAD, [groupCells('before the kill', before), groupCells('waited: in flight when the next leader took the key', across), groupCells('started after the first success', after)])}${errorsNote(records)}
`;
  return { text, failed, recoveredMs: firstOk - killAt };
}

export function renderRoutingSection(result: RoutingResult): string {
  const { settings, direct, proxied } = result;
  const steps = stepDownSection(result.stepDowns, settings.loadConcurrency);
  const crash = crashSection(result.crash, settings.loadConcurrency);
  const rows = settings.rows.map((r) => `${r.concurrency} in flight: ${r.requests} requests`).join('; ');
  const verdicts = [
    ...verdictLines(direct, '(a) `leaderDispatcher`', 'the plain `Agent`'),
    ...(proxied ? verdictLines(proxied, '(b) `createLeaderProxy`', 'the minimal proxy') : []),
    `- Planned step-downs: **${steps.failed} failed** of ${steps.total} requests across ${result.stepDowns.steps.length} step-downs (target 0): ${met(steps.failed === 0)}; requests in flight across a step-down: p99 ${ms(pct(steps.across.latencies, 99))} ms, max ${ms(steps.across.latencies[steps.across.latencies.length - 1] ?? Number.NaN)} ms, against p99 ${ms(pct(steps.steady.latencies, 99))} ms, max ${ms(steps.steady.latencies[steps.steady.latencies.length - 1] ?? Number.NaN)} ms in steady state.`,
    `- Crash: **${crash.failed} failed**; requests succeeded again ${(crash.recoveredMs / 1000).toFixed(2)} s after the kill (the session's expiry plus the lock-delay: see below).`,
  ];
  const proxiedText = proxied
    ? comparisonTable(proxied, ['minimal `node:http` proxy', '`createLeaderProxy`'], true)
    : '_Not measured: the SDK build of this run has no `createLeaderProxy`._';
  return `## Case 6: routing to the leader over HTTP

What routing through the SDK costs a request, against the same request sent without it,
and what a change of leader costs the requests in flight. \`undici\` ${undiciVersion()} (the
repository's, which the SDK resolves too); the SDK build of the run's start.

- **Processes.** The load generator, each of the ${BACKENDS} backends and the proxies run in
  **child processes of their own** (plain JavaScript transpiled by \`bench/child.ts\`, no tsx
  loader), so each one's CPU is its own and measured by \`process.cpuUsage()\` (every thread
  of the process) around each round; the main process only orchestrates and is idle while a
  round runs; Consul is another process. On 2 cores the load generator and the backend (and
  in (b) the proxy) compete for both: the rows are CPU-bound, which is where a client's own
  cost shows most.
- **Backend.** A minimal \`node:http\` server answering \`{"ok":true}\` (12 bytes) with a
  \`content-length\` while it holds the key, 421 otherwise. It campaigns on bare \`http\`: a
  session (TTL ${TTL}, \`Behavior: release\`), a blocking read of the key, \`?acquire\` as
  soon as the key is free.
- **Requests.** Every request is undici's \`request(url, { dispatcher })\`, \`GET /\`, its
  body read as text; a request's latency is from before \`request()\` to the end of the
  body; closed loop (each of the requests in flight sends the next one as soon as its own
  ends). Requests/s is the requests of a side over the time of its rounds.
- **(a) direct.** A plain undici \`Agent\` to the leader's origin, against
  \`leaderDispatcher(handle, { origin })\` (default options, a URL naming no real host), its
  handle following the key in the load process. ${rows}; per row one warm-up round per
  side, not counted, then ${settings.rounds} rounds per side, interleaved A B, B A, A B, …
  so that the machine's noise falls on both. The ratio columns are the SDK's value over the
  plain one; "by pair" is the median and the range of the pairs' own requests/s ratios (a round
  slowed by other work on the machine weighs less in the median); the verdicts take the p50
  over all rounds and the median pair.
- **(b) proxied.** The load is an undici \`Pool\` to a proxy in front of the same backend: a
  minimal \`node:http\` proxy (\`http.request\` to the fixed upstream on a keep-alive
  \`http.Agent\`, request and answer piped, headers passed as they are) against
  \`createLeaderProxy(handle, { origin })\` (default options; it drops hop-by-hop headers and
  adds \`X-Forwarded-*\`, which the minimal one does not). The two differ in their upstream
  client too: Node's \`http.request\` for the minimal one, undici (through its
  \`leaderDispatcher\`) for \`createLeaderProxy\`; (b) compares whole proxies, not the
  routing alone. Both proxies live in one process, only one under load at a time; same rows
  and rounds as (a).
- **Failover.** A continuous closed-loop load through a \`leaderDispatcher\` of its own (${settings.loadConcurrency} in
  flight) while the leader steps down (it answers 421 from the command on, releases the key,
  destroys its session and campaigns again ${REJOIN_MS} ms later), or while its process is
  killed. Times of the child processes are put on the main process's clock by the ping with
  the shortest round trip: largest |offset| ${ms(result.clock.offsetMs)} ms, round trips ≤ ${ms(result.clock.rttMs)} ms.
- **Order.** The crash runs first, on ${BACKENDS} backends of its own: once its leader is killed, its
  requests all wait in the dispatcher (no CPU) for as long as Consul keeps the dead session
  (2 × TTL after the last renewal on this agent, case 5), and (a), (b) and the step-downs run
  meanwhile; none of them starts unless it will end ${QUIET_MARGIN_MS / 1000} s before the
  session can expire, so the crash's recovery and its load after it run alone.
  ${result.duringCrash} measurements ran during the crash's wait; **${result.overlapping}** overlapped its recovery.
- It took ${(result.durationMs / 1000).toFixed(1)} s. Load average (1 / 5 / 15 min) ${loads(result.loadAverage.start)} at its start, ${loads(result.loadAverage.end)} at its end: other work shared the machine.

Result:

${verdicts.join('\n')}

### (a) undici \`Agent\` vs \`leaderDispatcher\`, straight to the leader

${comparisonTable(direct, ['plain `Agent`', '`leaderDispatcher`'], false)}

### (b) minimal \`node:http\` proxy vs \`createLeaderProxy\`, load by an undici \`Pool\`

${proxiedText}

${steps.text}
${crash.text}`;
}
