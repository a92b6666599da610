import { describe, expect, it } from 'vitest';
import { Subject, of } from 'rxjs';
import { readMeta as meta, sessionInfo, keyedLike } from '../test-fixtures.js';
import type { KeyedList } from './keyed-list.js';
import { indexOf } from './keyed-list.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { KvEntry } from '../wire/kv.js';
import { type PrefixEvent, type PrefixSnapshot, followPrefix } from './follow-prefix.js';

const entry = (key: string, session: string | null, modifyIndex: bigint): KvEntry => ({
  key,
  valueBase64: Buffer.from(JSON.stringify({ key, modifyIndex: Number(modifyIndex) })).toString('base64'),
  session,
  flags: 0n,
  lockIndex: 1n,
  createIndex: 1n,
  modifyIndex,
});

/** A prefix followed over a hand-fed blocking query; sessions exist unless listed as gone. */
function follow(gone: readonly string[] = []) {
  const kv$ = new Subject<BlockingQueryEvent<ReadonlyMap<string, KvEntry>>>();
  const reads: string[] = [];
  const events: PrefixEvent[] = [];
  followPrefix('p/', {
    kv$,
    session: (id) => {
      reads.push(id);
      return of({ type: 'value' as const, value: gone.includes(id) ? null : sessionInfo(id) });
    },
    // `/v1/session/list`: every session of the test but those gone.
    sessions: () => {
      reads.push('(list)');
      const all = ['S', 'T', ...Array.from({ length: 20 }, (_, i) => `S${i}`)].filter(
        (id) => !gone.includes(id),
      );
      return of({ type: 'value' as const, value: new Map(all.map((id) => [id, sessionInfo(id)])) });
    },
  }).subscribe((event) => events.push(event));
  let index = 10n;
  // Answers like KvListReader's: a list sharing the last one's index when the keys did not change.
  let last: KeyedList<KvEntry> | undefined;
  const answer = (entries: readonly KvEntry[]): PrefixSnapshot => {
    const list = keyedLike(entries, last);
    last = list;
    kv$.next({ type: 'result', value: list, meta: meta((index += 1n)) });
    const event = events.at(-1);
    if (event?.kind !== 'snapshot') throw new Error('no snapshot');
    return event;
  };
  return { answer, reads, events };
}

const holder = (snapshot: PrefixSnapshot, key: string): string | null => {
  const s = snapshot.keys.get(key);
  return s?.kind === 'held' ? s.session.id : s ? s.kind : null;
};

describe('followPrefix', () => {
  it('keeps the snapshot object of every key not written since, and reads each session once', () => {
    const { answer, reads } = follow();
    const a = [entry('p/a', 'S', 1n), entry('p/b', 'T', 2n), entry('p/c', null, 3n)];
    const first = answer(a);
    const second = answer([a[0] as KvEntry, entry('p/b', 'T', 4n), a[2] as KvEntry]);
    expect(second.keys.get('p/a')).toBe(first.keys.get('p/a'));
    expect(second.keys.get('p/c')).toBe(first.keys.get('p/c'));
    expect(second.keys.get('p/b')).not.toBe(first.keys.get('p/b'));
    const b = second.keys.get('p/b');
    expect(b?.kind === 'held' && b.entry.modifyIndex).toBe(4n);
    expect(reads.sort()).toEqual(['S', 'T']);
  });

  it('keeps a session that moved from one changed key to another (it is not read again)', () => {
    const { answer, reads } = follow();
    answer([entry('p/a', 'S', 1n), entry('p/b', 'T', 2n)]);
    const swapped = answer([entry('p/a', 'T', 3n), entry('p/b', 'S', 4n)]);
    expect(holder(swapped, 'p/a')).toBe('T');
    expect(holder(swapped, 'p/b')).toBe('S');
    expect(reads.sort()).toEqual(['S', 'T']);
  });

  it('forgets a session no key holds any more, and reads it again when a key names it', () => {
    const { answer, reads } = follow();
    answer([entry('p/a', 'S', 1n)]);
    answer([entry('p/a', null, 2n)]);
    expect(holder(answer([entry('p/a', 'S', 3n)]), 'p/a')).toBe('S');
    expect(reads).toEqual(['S', 'S']);
  });

  it('reads keys added, removed or reordered like a first answer', () => {
    const { answer, reads } = follow(['G']);
    answer([entry('p/a', 'S', 1n), entry('p/c', null, 2n)]);
    const grown = answer([entry('p/a', 'S', 1n), entry('p/b', 'G', 3n), entry('p/c', null, 2n)]);
    expect([...grown.keys.keys()]).toEqual(['p/a', 'p/b', 'p/c']);
    expect(holder(grown, 'p/b')).toBe('session-gone');
    const shrunk = answer([entry('p/b', 'G', 3n)]);
    expect([...shrunk.keys.keys()]).toEqual(['p/b']);
    expect(reads).toEqual(['S', 'G']);
    // Back to a key S holds: S was forgotten with p/a, so it is read again.
    expect(holder(answer([entry('p/a', 'S', 5n)]), 'p/a')).toBe('S');
    expect(reads).toEqual(['S', 'G', 'S']);
  });

  it('emits nothing for an answer that changed no key', () => {
    const { answer, events } = follow();
    const a = [entry('p/a', 'S', 1n)];
    answer(a);
    const count = events.length;
    answer(a);
    expect(events).toHaveLength(count);
  });

  it('agrees with a first read of the same answer after a run of single-key changes', () => {
    const { answer } = follow();
    const keys = Array.from({ length: 50 }, (_, i) => `p/k${String(i).padStart(2, '0')}`);
    let entries = keys.map((key, i) => entry(key, `S${i % 7}`, BigInt(i + 1)));
    answer(entries);
    let snapshot: PrefixSnapshot | undefined;
    for (let c = 0; c < 200; c += 1) {
      const i = (c * 31) % keys.length;
      const current = entries[i] as KvEntry;
      const session = current.session ? null : `S${c % 11}`;
      entries = entries.map((e, j) => (j === i ? entry(e.key, session, BigInt(100 + c)) : e));
      snapshot = answer(entries);
    }
    const fresh = follow().answer(entries);
    expect(
      snapshot && [...snapshot.keys.values()].map((s) => [s.key, s.kind, holder(snapshot, s.key)]),
    ).toEqual([...fresh.keys.values()].map((s) => [s.key, s.kind, holder(fresh, s.key)]));
    expect(indexOf([...(snapshot?.keys.values() ?? [])]).size).toBe(keys.length);
  });
});
