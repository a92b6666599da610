/** Case 5's section of BENCHMARKS.md. */
import { SUMMARY_HEAD, markdownTable, ms, summaryCells } from '../report.js';
import {
  type DestroySample,
  type FailoverResult,
  RENEW_EVERY_MS,
  RETRY_MS,
  STAGGER_MS,
  TTL,
  TTL_MS,
  type TtlSample,
} from './case.js';

type Measure<S> = readonly [label: string, value: (sample: S) => number | null];

const diff = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);

const DESTROY_MEASURES: readonly Measure<DestroySample>[] = [
  ['destroy → floor sees `null`', (s) => s.floorNull],
  ['destroy → SDK emits `null`', (s) => s.sdkNull],
  ['SDK − floor, `null` (same sample)', (s) => diff(s.sdkNull, s.floorNull)],
  ['`watchSessions` SDK − floor, `null`', (s) => diff(s.sessionsNull, s.floorNull)],
  ["destroy → contender's first acquire attempt", (s) => s.firstAttempt],
  ["destroy → contender's successful acquire (sent)", (s) => s.acquired],
  ['destroy → floor sees the next leader', (s) => s.floorNext],
  ['destroy → SDK emits the next leader', (s) => s.sdkNext],
  ['SDK − floor, next leader (same sample)', (s) => diff(s.sdkNext, s.floorNext)],
  ['successful acquire → SDK emits the next leader', (s) => diff(s.sdkNext, s.acquired)],
  ['destroy → `watchSessions` SDK emits the next leader', (s) => s.sessionsNext],
  ['`watchSessions` SDK − floor, next leader', (s) => diff(s.sessionsNext, s.floorNext)],
  ['successful acquire → `watchSessions` SDK emits the next leader', (s) => diff(s.sessionsNext, s.acquired)],
];

const TTL_MEASURES: readonly Measure<TtlSample>[] = [
  ["last renewal → floor sees `null` (Consul's share)", (s) => s.floorNull],
  ['last renewal → SDK emits `null`', (s) => s.sdkNull],
  ['SDK − floor (what the SDK adds)', (s) => diff(s.sdkNull, s.floorNull)],
  ['`watchSessions` SDK − floor', (s) => diff(s.sessionsNull, s.floorNull)],
];

function measureTable<S>(samples: readonly S[], measures: readonly Measure<S>[]): string {
  return markdownTable(
    ['from → to (ms)', ...SUMMARY_HEAD, 'missed'],
    measures.map(([label, value]) => {
      const values = samples.map(value);
      const seen = values.filter((v): v is number => v !== null);
      return [label, ...summaryCells(seen), String(values.length - seen.length)];
    }),
  );
}

function ttlSamplesTable(samples: readonly TtlSample[]): string {
  const cell = (x: number | null): string => (x === null ? 'missed' : ms(x));
  return markdownTable(
    ['sample', 'floor `null` ms', 'SDK `null` ms', 'SDK − floor ms'],
    samples.map((s, i) => [
      String(i + 1),
      cell(s.floorNull),
      cell(s.sdkNull),
      cell(diff(s.sdkNull, s.floorNull)),
    ]),
  );
}

export function renderFailoverSection(result: FailoverResult): string {
  const { settings, zeroDelay, defaultDelay, ttl, clocks } = result;
  const offset = Math.max(...clocks.map((c) => Math.abs(c.offsetMs)));
  const attempts = defaultDelay.map((s) => s.attempts);
  const coalescing =
    result.keys < 32
      ? 'fewer than the 32 from which the default options coalesce the keys of a folder, so one query per key'
      : 'coalesced by the default options into one recursive query';
  const expiry = ttl.flatMap((s) => (s.floorNull === null ? [] : [s.floorNull]));
  const measuredExpiry =
    expiry.length > 0
      ? `In this run the floor saw the key released ${ms(Math.min(...expiry))}–${ms(Math.max(...expiry))} ms after the last renewal (2 × TTL = ${2 * TTL_MS} ms).`
      : '';
  return `## Case 5: failover observation

How long until a follower learns that the leader is gone (\`null\`), and who the next one
is. The floor (case 1's bare-http loop of blocking KV reads plus a session read per new
session, one loop per key), the SDK (one \`createLeaderDiscovery\`, default options, one
\`leader(key)\` per key) and the SDK with \`watchSessions: true\` (it also follows the session
list: the contender's session, created before the destroy, is known when it takes the key)
each run on **their own worker thread** and follow every key of
the case: ${result.keys} keys, ${coalescing}. The holders and contenders run on the main
thread, on bare \`http\`. Times are from right before the destroy's (or the last
renewal's) PUT is written. Clock check between the main thread and the watcher threads:
|offset| ≤ ${(offset * 1000).toFixed(0)} µs.

- **Session destroyed.** A holder (a session with the given lock-delay and
  \`Behavior: release\`) holds the key with \`{"seq":k}\`; a second contender, with its own
  session, follows the key with a blocking query and tries \`?acquire\` as soon as it sees
  the key free, then again every ${RETRY_MS} ms while Consul refuses (lock-delay). Once all
  watchers show the holder and the contender is blocked: \`PUT /v1/session/destroy/<id>\`.
  A \`null\` counts only if it came before the next leader.
  - lock-delay **0s**: ${settings.zeroDelaySamples} samples one after the other on one key (${(result.zeroDelayMs / 1000).toFixed(1)} s).
  - lock-delay **15s** (Consul's default): ${settings.defaultDelaySamples} samples, one key each, started
    ${STAGGER_MS} ms apart so they overlap in time but no two events fall within tens of ms of
    each other.
- **TTL expired.** A holder with a TTL session (\`TTL: ${TTL}\`, the dev agent's minimum;
  default lock-delay) renews it every ${RENEW_EVERY_MS / 1000} s, then renews one last time and stops (a
  killed process). Consul's documentation allows the invalidation anywhere between TTL and
  2 × TTL after the last renewal; then the session's keys are released. ${measuredExpiry}
  ${settings.ttlSamples} sample(s), run alongside the 15s samples with their events in between
  (${(result.slowMs / 1000).toFixed(1)} s for both). What Consul takes is when the floor's blocking query
  sees the key released; what the SDK adds is its emission minus the floor's, in the same
  sample. (The next leader after an expiry waits for the lock-delay as after a destroy.)
- It took ${(result.durationMs / 1000).toFixed(1)} s.

### Session destroyed, lock-delay 0s — ${zeroDelay.length} samples

${measureTable(zeroDelay, DESTROY_MEASURES)}

### Session destroyed, lock-delay 15s (default) — ${defaultDelay.length} samples

${measureTable(defaultDelay, DESTROY_MEASURES)}

The contender's acquire was refused ${Math.min(...attempts) - 1}–${Math.max(...attempts) - 1} times per sample before the lock-delay ran
out: Consul's share of the failover is the lock-delay; the followers' share is the last
rows.

### TTL expired (TTL ${TTL}) — ${ttl.length} sample(s)

${measureTable(ttl, TTL_MEASURES)}

${ttlSamplesTable(ttl)}
`;
}
