import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { z } from 'zod';
import type { Leader } from '@consul-leader/types';
import { readMeta, sessionInfo, keyedLike } from '../test-fixtures.js';
import { ConsulUnreachableError } from '../errors.js';
import type { KeyedList } from '../prefix/keyed-list.js';
import type { KvEntry } from '../wire/kv.js';
import type { PrefixEvent } from '../prefix/follow-prefix.js';
import { type KeySnapshot, heldBy } from '../key/key-snapshot.js';
import { leadersOf } from './leader-of.js';
import { stateMapper } from './to-state.js';

const meta = readMeta(5n);
const entry = (key: string, host: string, modifyIndex: bigint, holder: string | null = 'S'): KvEntry => ({
  key,
  valueBase64: Buffer.from(JSON.stringify({ host })).toString('base64'),
  session: holder,
  flags: 0n,
  lockIndex: 1n,
  createIndex: 1n,
  modifyIndex,
});
const held = (e: KvEntry): KeySnapshot =>
  e.session ? heldBy(e, sessionInfo(e.session), meta) : { kind: 'no-session', key: e.key, entry: e, meta };

/** Prefix snapshots like followPrefix's: unchanged keys keep their objects, same keys share the index. */
function prefix() {
  const events = new Subject<PrefixEvent>();
  const emitted: ReadonlyMap<string, Leader<{ host: string }>>[] = [];
  events
    .pipe(leadersOf(stateMapper({ schema: z.object({ host: z.string() }), decode: 'json' }), undefined))
    .subscribe((m) => emitted.push(m));
  let last: KeyedList<KeySnapshot> | undefined;
  const send = (snapshots: KeySnapshot[]): void => {
    last = keyedLike(snapshots, last);
    events.next({ kind: 'snapshot', prefix: 'p/', keys: last, meta });
  };
  return { events, emitted, send };
}

const hosts = (m: ReadonlyMap<string, Leader<{ host: string }>> | undefined) =>
  Object.fromEntries([...(m ?? [])].map(([k, l]) => [k, l.node.host]));

describe('leadersOf', () => {
  it('emits the leaders by key, keys without a valid leader absent, and again only when one changes', () => {
    const { emitted, send } = prefix();
    const a = held(entry('p/a', 'a1', 1n));
    const b = held(entry('p/b', 'b1', 2n, null));
    const c = held({ ...entry('p/c', 'x', 3n), valueBase64: Buffer.from('not json').toString('base64') });
    send([a, b, c]);
    expect(hosts(emitted[0])).toEqual({ 'p/a': 'a1' });
    // p/c rewritten, still invalid; p/b still without a session: no leader changed.
    send([a, held(entry('p/b', 'b1', 4n, null)), held({ ...entry('p/c', 'y', 5n), valueBase64: 'e30=' })]);
    expect(emitted).toHaveLength(1);
    send([held(entry('p/a', 'a2', 6n)), held(entry('p/b', 'b2', 7n)), c]);
    expect(emitted).toHaveLength(2);
    expect(hosts(emitted[1])).toEqual({ 'p/a': 'a2', 'p/b': 'b2' });
    expect([...(emitted[1]?.keys() ?? [])]).toEqual(['p/a', 'p/b']);
  });

  it('follows keys added and removed, and keeps the last leaders through an outage', () => {
    const { events, emitted, send } = prefix();
    const a = held(entry('p/a', 'a1', 1n));
    send([a]);
    send([a, held(entry('p/b', 'b1', 2n))]);
    expect(hosts(emitted.at(-1))).toEqual({ 'p/a': 'a1', 'p/b': 'b1' });
    events.next({
      kind: 'unreachable',
      prefix: 'p/',
      error: new ConsulUnreachableError('refused', 'refused'),
      attempt: 1,
      retryInMs: 250,
      lastKnown: null,
    });
    expect(emitted).toHaveLength(2);
    send([held(entry('p/b', 'b1', 2n))]);
    expect(hosts(emitted.at(-1))).toEqual({ 'p/b': 'b1' });
  });

  it('hands out maps that behave as Maps and never change once emitted', () => {
    const { emitted, send } = prefix();
    const keys = Array.from({ length: 6 }, (_, i) => `p/${i}`);
    const first = keys.map((key, i) => held(entry(key, `h${i}`, BigInt(i + 1), i % 2 ? 'S' : null)));
    send(first);
    send(first.map((s, i) => (i === 2 ? held(entry(keys[2] ?? '', 'new', 9n)) : s)));
    send(first.map((s, i) => (i === 1 ? held(entry(keys[1] ?? '', 'h1', 10n, null)) : s)));
    expect(emitted).toHaveLength(3);
    const expected = [
      { 'p/1': 'h1', 'p/3': 'h3', 'p/5': 'h5' },
      { 'p/1': 'h1', 'p/2': 'new', 'p/3': 'h3', 'p/5': 'h5' },
      { 'p/3': 'h3', 'p/5': 'h5' },
    ];
    emitted.forEach((map, i) => {
      const want = expected[i] ?? {};
      // The first map is read only now, after the later ones were made: it must still be the first answer.
      expect(hosts(map)).toEqual(want);
      expect(map.size).toBe(Object.keys(want).length);
      expect([...map.keys()]).toEqual(Object.keys(want));
      expect([...map.values()].map((l) => l.node.host)).toEqual(Object.values(want));
      for (const key of keys) {
        expect(map.has(key)).toBe(key in want);
        expect(map.get(key)?.node.host).toBe((want as Record<string, string>)[key]);
      }
      const seen: string[] = [];
      map.forEach((leader, key, self) => {
        expect(self).toBe(map);
        seen.push(`${key}=${leader.node.host}`);
      });
      expect(seen).toEqual(Object.entries(want).map(([k, v]) => `${k}=${v}`));
      expect(new Map(map)).toEqual(new Map([...map]));
    });
  });
});
