/** Case 3's section of BENCHMARKS.md. */
import { SUMMARY_HEAD, markdownTable, summaryCells } from '../report.js';
import type { ManyKeysRow } from './case.js';

export function renderManyKeysSection(rows: readonly ManyKeysRow[], changes: number): string {
  const latency = markdownTable(
    ['keys', 'followed through', ...SUMMARY_HEAD],
    rows.map((r) => [String(r.keys), r.mode, ...summaryCells(r.latencies)]),
  );
  const work = markdownTable(
    [
      'keys',
      'followed through',
      'first load ms',
      'KV requests / change',
      'session requests / change',
      'KV reads in flight',
      'connections',
      'CPU ms / change',
    ],
    rows.map((r) => [
      String(r.keys),
      r.mode,
      r.firstLoadMs.toFixed(0),
      r.kvRequestsPerChange.toFixed(2),
      r.sessionRequestsPerChange.toFixed(2),
      String(r.kvInFlight),
      String(r.connections),
      r.cpuMsPerChange.toFixed(1),
    ]),
  );
  return [
    '## Case 3: many keys under one prefix',
    '',
    `Keys \`<prefix>s<i>/leader\` all held by one session, followed by one \`createLeaderDiscovery\``,
    'through the counting proxy of `test/support/proxy.ts`, either with `leaders(prefix)` or with one',
    "`leader(key)` per key (coalesced by default into the prefix's recursive query). Then",
    `${changes} changes, one key at a time (a release or a re-acquire with a new value, written with`,
    '`/v1/txn`), each measured from the moment the write is sent to the emission for that key. One',
    "key through `leader(key)` is the baseline in the same harness. CPU is this process's: the SDK,",
    'but also the writer and the in-process proxy. In-flight reads and connections are counted',
    'after the changes, with everything still followed.',
    '',
    "### Latency from the write to the key's emission (ms)",
    '',
    latency,
    '',
    '### Work per change',
    '',
    work,
  ].join('\n');
}
