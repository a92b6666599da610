import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { readMeta as meta } from '../test-fixtures.js';
import { ConsulUnreachableError } from '../errors.js';
import { KeyedList } from './keyed-list.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { KvEntry } from '../wire/kv.js';
import { splitPrefixQuery } from './split-prefix.js';

type ListEvent = BlockingQueryEvent<ReadonlyMap<string, KvEntry>>;

/** Sub-prefix answers leave on the next turn of the event loop (gathered). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const entry = (key: string, modifyIndex = 1n): KvEntry => ({
  key,
  valueBase64: null,
  session: null,
  flags: 0n,
  lockIndex: 0n,
  createIndex: 1n,
  modifyIndex,
});

const keysOf = (event: ListEvent | undefined): string[] =>
  event?.type === 'result' ? [...event.value.keys()] : [];

const lost = (attempt: number): Extract<ListEvent, { type: 'error' }> => ({
  type: 'error',
  error: new ConsulUnreachableError('reset', 'lost'),
  attempt,
  retryInMs: 100,
});

/** The split over hand-fed queries: the whole prefix, each sub-prefix, the key list. */
function split(beforeNextEmit?: () => Promise<void> | undefined) {
  const whole: Subject<ListEvent>[] = [];
  const subPrefixes = new Map<
    string,
    { events: Subject<ListEvent>; seed: ReadonlyMap<string, KvEntry>; startIndex: bigint }
  >();
  const keys: Subject<BlockingQueryEvent<readonly string[]>>[] = [];
  const keysStartIndexes: bigint[] = [];
  const events: ListEvent[] = [];
  const subscription = splitPrefixQuery({
    prefix: 'p/',
    whole: () => {
      const subject = new Subject<ListEvent>();
      whole.push(subject);
      return subject;
    },
    subPrefix: (prefix, seed, startIndex) => {
      const events = new Subject<ListEvent>();
      subPrefixes.set(prefix, { events, seed, startIndex });
      return events;
    },
    keys: (startIndex) => {
      keysStartIndexes.push(startIndex);
      const subject = new Subject<BlockingQueryEvent<readonly string[]>>();
      keys.push(subject);
      return subject;
    },
    minKeys: 4,
    limits: { maxSubPrefixes: 8, minSubPrefixKeys: 2 },
    ...(beforeNextEmit ? { beforeNextEmit } : {}),
  }).subscribe((event) => events.push(event));
  const answer = (subject: Subject<ListEvent> | undefined, list: readonly KvEntry[], index = 10n) =>
    subject?.next({ type: 'result', value: KeyedList.of(list), meta: meta(index) });
  return { whole, subPrefixes, keys, keysStartIndexes, events, answer, subscription };
}

const four = [entry('p/a/1'), entry('p/a/2'), entry('p/b/1'), entry('p/b/2')];

describe('splitPrefixQuery', () => {
  it('passes the whole answer on, and stays whole below minKeys', async () => {
    const s = split();
    s.answer(s.whole[0], four.slice(0, 3));
    expect(keysOf(s.events[0])).toEqual(['p/a/1', 'p/a/2', 'p/b/1']);
    expect(s.subPrefixes.size).toBe(0);
    expect(s.whole[0]?.observed).toBe(true);
  });

  it('splits at minKeys: each subPrefix is seeded with its entries, and an unchanged subPrefix emits nothing', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    expect(s.whole[0]?.observed).toBe(false);
    expect([...s.subPrefixes.keys()]).toEqual(['p/a', 'p/b']);
    const a = s.subPrefixes.get('p/a');
    expect([...(a?.seed.values() ?? [])]).toEqual([four[0], four[1]]);
    // A sub-prefix's first answer with the seed's own objects changes nothing.
    s.answer(a?.events, [four[0] as KvEntry, four[1] as KvEntry], 11n);
    await turn();
    expect(s.events).toHaveLength(1);
  });

  it("starts each subPrefix blocking on its entries' last write, and the key list on the whole answer's index", () => {
    const s = split();
    s.answer(
      s.whole[0],
      [entry('p/a/1', 3n), entry('p/a/2', 7n), entry('p/b/1', 2n), entry('p/b/2', 5n)],
      9n,
    );
    // Consul's index of a sub-prefix is its last write (or a later delete under it), not the prefix's.
    expect([...s.subPrefixes.values()].map((subPrefix) => subPrefix.startIndex)).toEqual([7n, 5n]);
    expect(s.keysStartIndexes).toEqual([9n]);
  });

  it('emits the subPrefixes laid end to end on a change, sharing the index while the keys stay', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    const first = s.events[0] as Extract<ListEvent, { type: 'result' }>;
    const changed = entry('p/b/1', 12n);
    s.answer(s.subPrefixes.get('p/b')?.events, [changed, four[3] as KvEntry], 12n);
    await turn();
    const next = s.events[1] as Extract<ListEvent, { type: 'result' }>;
    expect([...next.value.values()]).toEqual([four[0], four[1], changed, four[3]]);
    expect((next.value as KeyedList<KvEntry>).index).toBe((first.value as KeyedList<KvEntry>).index);
    expect(next.meta.index).toBe(12n);
    // A new key in a sub-prefix: a new index, in order.
    s.answer(s.subPrefixes.get('p/a')?.events, [...four.slice(0, 2), entry('p/a/3')], 13n);
    await turn();
    expect(keysOf(s.events[2])).toEqual(['p/a/1', 'p/a/2', 'p/a/3', 'p/b/1', 'p/b/2']);
  });

  it('reports one error per retry round while queries fail, and emits once every query answers', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    const a = s.subPrefixes.get('p/a')?.events;
    const b = s.subPrefixes.get('p/b')?.events;
    a?.next(lost(1));
    b?.next(lost(1));
    s.keys[0]?.next(lost(1));
    expect(s.events.slice(1).map((e) => e.type)).toEqual(['error']);
    b?.next(lost(2));
    a?.next(lost(2));
    expect(s.events.slice(1).map((e) => e.type)).toEqual(['error', 'error']);
    // Answers while another query still fails are held.
    s.answer(a, four.slice(0, 2), 14n);
    s.keys[0]?.next({ type: 'result', value: four.map((e) => e.key), meta: meta(14n) });
    await turn();
    expect(s.events).toHaveLength(3);
    s.answer(b, four.slice(2), 14n);
    await turn();
    expect(s.events.map((e) => e.type)).toEqual(['result', 'error', 'error', 'result']);
    expect(keysOf(s.events[3])).toEqual(four.map((e) => e.key));
  });

  it('reads the prefix whole again when its key list names a key no subPrefix follows', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    s.keys[0]?.next({ type: 'result', value: [...four.map((e) => e.key), 'p/a/9'], meta: meta(15n) });
    expect(s.whole).toHaveLength(1);
    s.keys[0]?.next({ type: 'result', value: [...four.map((e) => e.key), 'p/c/1'], meta: meta(16n) });
    expect(s.whole).toHaveLength(2);
    expect(s.subPrefixes.get('p/a')?.events.observed).toBe(false);
    expect(s.keys[0]?.observed).toBe(false);
    s.answer(s.whole[1], [...four, entry('p/c/1')], 16n);
    await turn();
    expect(keysOf(s.events.at(-1))).toEqual([...four.map((e) => e.key), 'p/c/1']);
    expect([...s.subPrefixes.keys()]).toEqual(['p/a', 'p/b', 'p/c']);
  });

  it('holds a result while the reads joining the last one are in flight, then emits the latest once', async () => {
    let release: () => void = () => undefined;
    let pending: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
    const s = split(() => pending);
    s.answer(s.whole[0], four);
    const b = s.subPrefixes.get('p/b')?.events;
    s.answer(b, [entry('p/b/1', 20n), four[3] as KvEntry], 20n);
    await turn();
    s.answer(b, [entry('p/b/1', 21n), four[3] as KvEntry], 21n);
    await turn();
    expect(s.events).toHaveLength(1);
    pending = undefined;
    release();
    await turn();
    await turn();
    expect(s.events).toHaveLength(2);
    expect(s.events[1]?.type === 'result' && s.events[1].value.get('p/b/1')?.modifyIndex).toBe(21n);
  });

  it('gathers the subPrefixes that answer in one turn of the event loop into one result', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    // A session's end releases keys of both sub-prefixes in one write.
    s.answer(s.subPrefixes.get('p/a')?.events, [entry('p/a/1', 30n), four[1] as KvEntry], 30n);
    s.answer(s.subPrefixes.get('p/b')?.events, [entry('p/b/1', 30n), four[3] as KvEntry], 30n);
    await turn();
    expect(s.events).toHaveLength(2);
    expect(s.events[1]?.type === 'result' && s.events[1].value.get('p/a/1')?.modifyIndex).toBe(30n);
    expect(s.events[1]?.type === 'result' && s.events[1].value.get('p/b/1')?.modifyIndex).toBe(30n);
  });

  it('reports a query still failing after another recovered, from its own attempts', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    const a = s.subPrefixes.get('p/a')?.events;
    const b = s.subPrefixes.get('p/b')?.events;
    for (const attempt of [1, 2, 3]) a?.next(lost(attempt));
    b?.next(lost(1));
    s.answer(a, four.slice(0, 2), 40n);
    b?.next(lost(2));
    const errors = s.events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && e.attempt);
    expect(errors).toEqual([1, 2, 3, 2]);
  });

  it('stops every query on unsubscribe', async () => {
    const s = split();
    s.answer(s.whole[0], four);
    s.subscription.unsubscribe();
    expect([...s.subPrefixes.values()].some((subPrefix) => subPrefix.events.observed)).toBe(false);
    expect(s.keys[0]?.observed).toBe(false);
  });
});
