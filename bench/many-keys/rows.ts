/**
 * The shape of every case 3 table: for each size its prefix, for each way of
 * following one row, measured with the same writer, agent, changes and tags
 * as the rest of the run. What differs between the tables is theirs: the
 * side-by-side rows (the floor and the SDK, each through its counting proxy)
 * and the split rows (the SDK alone, with the prefix's one query and then
 * split, each through a new hop of the table's way to Consul).
 */
import type { ConsulAgent } from '../../scripts/consul-agent.js';
import type { ConsulProxy } from '../../test/support/proxy.js';
import type { ManyKeysMode, ManyKeysRow, ManyKeysSplitRow } from './case.js';
import { type Counted, viaProxy } from './hops.js';
import { type MeasureOptions, type SplitMeasure, type Watcher, measure, measureAlone } from './measure.js';
import type { FollowOrder } from './protocol.js';
import type { ManyKeysThread } from './threads.js';
import type { SeededPrefix, Writer } from './writer.js';

/** What every row of a table is measured with: the agent it writes to (and whose CPU counts), its prefixes. */
export interface Run {
  readonly consul: ConsulAgent;
  readonly writer: Writer;
  /** The prefix of `size` keys, written for the row (or before it). */
  readonly prefixOf: (size: number) => Promise<SeededPrefix>;
  /** Measured changes per row. */
  readonly changes: number;
  readonly nextTag: () => string;
  readonly log: (line: string) => void;
}

/** One row to measure: its size and way of following, its prefix, and `measure`'s options for it. */
export interface RowAt {
  readonly size: number;
  readonly mode: ManyKeysMode;
  readonly seeded: SeededPrefix;
  readonly changes: number;
  /** The options of one measurement of the row; `label` names it in the log. */
  readonly options: (label: string) => MeasureOptions;
  readonly log: (line: string) => void;
}

/** A table: its sizes, the ways of following each, which key each change writes, and how a row is measured. */
export interface Table<Row> {
  readonly sizes: readonly number[];
  readonly modes: (size: number) => readonly ManyKeysMode[];
  /** The index of the key change `c` (warm-up ones included) writes, at `size` keys. */
  readonly keyAt: (size: number) => (c: number) => number;
  readonly row: (at: RowAt) => Promise<Row>;
}

/** Measures every row of `table`, one after the other, in order of size, then of mode. */
export async function eachRow<Row>(run: Run, table: Table<Row>): Promise<Row[]> {
  const { writer, changes, nextTag, log } = run;
  const rows: Row[] = [];
  for (const size of table.sizes) {
    const seeded = await run.prefixOf(size);
    const { prefix, holder, state } = seeded;
    for (const mode of table.modes(size)) {
      const options = (label: string): MeasureOptions => ({
        writer,
        prefix,
        holder,
        changes,
        state,
        nextTag,
        keyAt: table.keyAt(size),
        consulPid: run.consul.process().pid,
        label,
        log,
      });
      rows.push(await table.row({ size, mode, seeded, changes, options, log }));
    }
  }
  return rows;
}

/** A watcher thread and the counting proxy it reads through, the same for the whole table. */
export interface Proxied {
  readonly thread: ManyKeysThread;
  readonly proxy: ConsulProxy;
}

/**
 * The plain-HTTP rows: the floor and the SDK side by side, each through its
 * own counting proxy (the same hop for both). One key through `leader(key)`
 * is the baseline; every change writes another key.
 */
export const sideBySide = (sizes: readonly number[], floor: Proxied, sdk: Proxied): Table<ManyKeysRow> => ({
  sizes,
  modes: (size) => (size === 1 ? ['leader(key) per key'] : ['leaders(prefix)', 'leader(key) per key']),
  keyAt: (size) => (c) => (c * 7919) % size,
  async row({ size, mode, seeded: { prefix }, changes, options, log }) {
    const through = ({ thread, proxy }: Proxied, kind: FollowOrder['kind']): Watcher => ({
      thread,
      order: { kind, host: proxy.host, port: proxy.port, prefix, size },
      ...viaProxy(proxy, prefix),
    });
    const measured = await measure(options(`${size} keys, ${mode}`), [
      through(floor, 'floor'),
      through(sdk, mode),
    ]);
    const [floorSide, sdkSide] = measured.watchers;
    if (!floorSide || !sdkSide) throw new Error('many-keys: a watcher is missing');
    log(`many-keys: ${size} keys, ${mode}: done`);
    return {
      keys: size,
      mode,
      changes,
      floor: floorSide.stats,
      sdk: sdkSide.stats,
      kvRequestsPerChange: sdkSide.requestsPerChange.kv,
      sessionRequestsPerChange: sdkSide.requestsPerChange.session,
      floorRequestsPerChange: floorSide.requestsPerChange.all,
      kvInFlight: sdkSide.kvInFlight,
      connections: sdkSide.connections.open,
      consulCpuMsPerChange: measured.consulCpuMsPerChange,
    };
  },
});

/** The SDK's own hop to Consul for one measurement of a split row: where it reads, how it is counted. */
export interface Hop extends Counted {
  /** Where the SDK reads, and over what (`http2`, or `http1Split` over plain HTTP). */
  readonly via: Pick<FollowOrder, 'host' | 'port' | 'http2' | 'http1Split'>;
  /** Called with the measurement before the hop closes (for the log). */
  readonly measured?: (measure: SplitMeasure) => void;
  close(): Promise<void>;
}

/** How a table of split rows reaches Consul: a new hop for each measurement, and the names of both in the log. */
export interface SplitWay {
  /** `over HTTPS`, `over plain HTTP`. */
  readonly over: string;
  /** The configurations in the log: the prefix's one query, then split. */
  readonly names: readonly [whole: string, split: string];
  open(
    row: { readonly size: number; readonly mode: ManyKeysMode; readonly prefix: string },
    split: boolean,
  ): Promise<Hop>;
}

/** Pairs of changes on one key: a release, then a re-acquire (as many of each in every measurement). */
const inPairs =
  (size: number) =>
  (c: number): number =>
    (Math.floor(c / 2) * 7919) % size;

/**
 * Split rows: at each size and in each mode, the SDK thread alone, with the
 * prefix's one query and then split, each through its own hop of `way`.
 */
export const splitRows = (
  sizes: readonly number[],
  sdk: ManyKeysThread,
  way: SplitWay,
): Table<ManyKeysSplitRow> => ({
  sizes,
  modes: () => ['leaders(prefix)', 'leader(key) per key'],
  keyAt: inPairs,
  async row({ size, mode, seeded: { prefix, state }, changes, options }) {
    const keys = [...state.keys()];
    const alone = async (split: boolean): Promise<SplitMeasure> => {
      const hop = await way.open({ size, mode, prefix }, split);
      try {
        const measured = await measureAlone(
          options(`${size} keys ${way.over}, ${mode}, ${way.names[split ? 1 : 0]}`),
          {
            thread: sdk,
            order: { kind: mode, prefix, size, ...hop.via },
            requests: hop.requests,
            connections: hop.connections,
          },
          keys,
        );
        hop.measured?.(measured);
        return measured;
      } finally {
        await hop.close();
      }
    };
    const whole = await alone(false);
    const split = await alone(true);
    return { keys: size, mode, changes, whole, split };
  },
});
