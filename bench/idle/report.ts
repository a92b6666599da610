/** Case 4's section of BENCHMARKS.md. */
import { markdownTable } from '../report.js';
import { summarize } from '../stats.js';
import { AGENT_HCL, type IdleCaseResult, type IdleRowResult, WAIT, WAIT_SECONDS } from './case.js';

const mib = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);
const kib = (bytes: number): string => (bytes / 1024).toFixed(2);
const fixed = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

const MODES: Record<IdleRowResult['row']['mode'], string> = {
  'per-key': 'one `leader(key)` each, `coalesce: false`',
  coalesced: 'one `leader(key)` each, default options (coalesced)',
  prefix: 'one `leaders(prefix)`',
  floor: 'bare `http` loop per key, no SDK (reference)',
  'per-key-tls': 'one `leader(key)` each, `coalesce: false`, HTTPS',
  'per-key-h2': 'one `leader(key)` each, `coalesce: false`, HTTPS with `http2: true`',
};
/** A count, or a dash where the proxy cannot see requests (inside TLS). */
const count = (x: number): string => (Number.isNaN(x) ? '—' : String(x));
const label = ({ row }: IdleRowResult): string =>
  row.keys === 0
    ? 'nothing followed (the process alone)'
    : `${row.keys.toLocaleString('en-US')} keys, ${MODES[row.mode]}`;
/** `x / keys`, or a dash for the baseline row. */
const perKey = (x: number, keys: number, format: (v: number) => string): string =>
  keys === 0 ? '—' : format(x / keys);
const seconds = (ms: number): string => (ms / 1000).toFixed(2);
const minutes = (r: IdleRowResult): number => r.window.durationMs / 60_000;

function requestTable(rows: readonly IdleRowResult[]): string {
  return markdownTable(
    [
      'followed',
      'window s',
      'KV reads',
      'KV reads / min',
      'KV reads / min / key',
      'per query: reads / min, median (min–max)',
      'between blocking reads of a query s: median (min–max)',
      '60 s / median interval',
      'other requests',
      'connections at the proxy',
      'emissions',
    ],
    rows.map((r) => {
      const m = minutes(r);
      const perPath = summarize(r.readsPerPath.map((n) => n / m));
      const intervals = summarize(r.intervals);
      return [
        label(r),
        fixed(r.window.durationMs / 1000, 1),
        count(r.requests.kv),
        Number.isNaN(r.requests.kv) ? '—' : fixed(r.requests.kv / m, 1),
        Number.isNaN(r.requests.kv) ? '—' : perKey(r.requests.kv / m, r.row.keys, (x) => fixed(x, 3)),
        perPath
          ? `${fixed(perPath.p50)} (${fixed(perPath.min)}–${fixed(perPath.max)}) over ${perPath.n} ${perPath.n === 1 ? 'query' : 'queries'}`
          : '',
        intervals ? `${seconds(intervals.p50)} (${seconds(intervals.min)}–${seconds(intervals.max)})` : '',
        intervals ? fixed(60_000 / intervals.p50) : '',
        count(r.requests.other),
        String(r.connections),
        String(r.window.emissions),
      ];
    }),
  );
}

function costTable(rows: readonly IdleRowResult[]): string {
  return markdownTable(
    [
      'followed',
      'process CPU ms / min: user + system (user / system)',
      `per ${rows[0]?.window.sliceMs ?? 5000} ms slice, as ms / min: median (min–max)`,
      'CPU µs / key / min',
      'event-loop utilization',
      'Consul agent CPU ms / min',
      'RSS MiB (baseline)',
      'heap MiB (baseline)',
      'heap / key KiB',
    ],
    rows.map((r) => {
      const m = minutes(r);
      const cpu = r.window.cpuUserMs + r.window.cpuSystemMs;
      const perMinute = 60_000 / r.window.sliceMs;
      const slices = summarize(r.window.cpuSlicesMs.map((x) => x * perMinute));
      const { memory } = r.window;
      return [
        label(r),
        `${fixed(cpu / m, 1)} (${fixed(r.window.cpuUserMs / m, 0)} / ${fixed(r.window.cpuSystemMs / m, 0)})`,
        slices ? `${fixed(slices.p50, 1)} (${fixed(slices.min, 1)}–${fixed(slices.max, 1)})` : '',
        perKey((cpu / m) * 1000, r.row.keys, (x) => fixed(x, 1)),
        `${fixed(r.window.eventLoopUtilization * 100, 2)} %`,
        fixed(r.agentCpuMs / m, 0),
        `${mib(memory.rss)} (${mib(r.baseline.rss)})`,
        `${mib(memory.heapUsed)} (${mib(r.baseline.heapUsed)})`,
        perKey(memory.heapUsed - r.baseline.heapUsed, r.row.keys, kib),
      ];
    }),
  );
}

export function renderIdleSection(result: IdleCaseResult): string {
  const { settings, rows } = result;
  const low = 60 / (WAIT_SECONDS + WAIT_SECONDS / 16);
  const high = 60 / WAIT_SECONDS;
  const first = rows.find((r) => r.row.mode === 'per-key' && r.row.keys > 0);
  const measured = first ? first.requests.kv / minutes(first) / first.row.keys : Number.NaN;
  const interval = first ? summarize(first.intervals) : null;
  return `## Case 4: idle cost

Keys that each have a leader (one session per key, no TTL) and never change, followed by
one \`createLeaderDiscovery({ wait: '${WAIT}' })\` in a child process, through the counting
proxy of \`test/support/proxy.ts\` (in the bench's main process). Measured over a window of
${settings.windowMs / 1000} s that starts 3 s after every key had its leader. Three ways to follow
them with the SDK: one \`leader(key)\` per key with \`coalesce: false\` (one blocking
query per key); the same with the default options, under which 32 or more followed keys
of one top-level folder share that folder's recursive query; and one \`leaders(prefix)\`.

- Each row has **its own Consul agent, started with
  \`${AGENT_HCL}\`**: one blocking query per key holds one
  connection, and Consul's default \`http_max_conns_per_client\` (200) would refuse most
  of 1,000. Each row also has its own proxy and process. ${
    settings.parallel
      ? 'Quick mode runs the rows at the same time, so their system CPU times mix (the kernel charges loopback work to whichever process is running).'
      : "The rows run one after the other: side by side, the kernel would charge part of one process's loopback work to another."
  } The first row is what the process costs with nothing followed.
- The reference row needs no SDK: one loop of blocking reads per key on a keep-alive
  \`http.Agent\` that parses each answer (case 1's floor, with the same \`wait\`).
- The HTTPS rows (if any) read an agent that serves HTTPS only (certificates from
  \`consul tls\`, as in \`test/tls.test.ts\`), through a TCP pass-through
  (\`test/support/tcp-proxy.ts\`) that counts connections but cannot see the requests
  inside TLS (a dash): the same keys, one \`leader(key)\` each, over HTTP/1.1 (one
  connection per blocking query) and with \`http2: true\` (streams of shared connections,
  up to 100 each).
- Requests: what the proxy received. With nothing changing, a blocking query returns when
  its \`wait\` runs out, after Consul's random extra of up to wait/16: expect between
  ${fixed(low)} and ${fixed(high)} reads per minute per query (60 / ${WAIT_SECONDS} s). The keys' queries start
  together, so a count over a short window is coarse: the proxy also timestamps every
  blocking read, and the time between two reads of one query (from its first blocking
  read to the end of the window) gives the rate more finely.
- CPU: \`process.cpuUsage()\` of the follower process over the window (and over each slice
  of it, for the spread); the agent's from \`/proc/<pid>/stat\`. Memory: RSS and
  \`heapUsed\` after \`gc()\` at the end of the window; baseline: the same process before it
  followed anything (SDK loaded, discovery created). "Heap / key" is (heap − baseline) / keys.
- It took ${(result.durationMs / 1000).toFixed(1)} s.

Result: ${first ? `${first.row.keys} keys, one query per key: **${fixed(measured, 2)}** KV reads per minute per key counted over the window, **${interval ? fixed(60_000 / interval.p50) : 'n/a'}** from the median time between two reads of a key (expected ${fixed(low)}–${fixed(high)}).` : ''}

### Requests

${requestTable(rows)}

### CPU and memory

${costTable(rows)}
`;
}
