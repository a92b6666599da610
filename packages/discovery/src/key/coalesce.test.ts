import { describe, expect, it } from 'vitest';
import { Subject, defer, finalize } from 'rxjs';
import { readMeta, keyedLike } from '../test-fixtures.js';
import type { KeyedList } from '../prefix/keyed-list.js';
import type { PrefixEvent } from '../prefix/follow-prefix.js';
import type { KeyEvent, KeySnapshot } from './key-snapshot.js';
import { KeyGroups, PrefixRouter, topLevelFolder } from './coalesce.js';

const meta = readMeta(5n);
const snapshot = (key: string, modifyIndex: bigint): KeySnapshot => ({
  kind: 'no-session',
  key,
  meta,
  entry: { key, valueBase64: null, session: null, flags: 0n, lockIndex: 0n, createIndex: 1n, modifyIndex },
});

function setUp() {
  const source = new Subject<PrefixEvent>();
  let subscribed = 0;
  let idle = 0;
  const router = new PrefixRouter(
    defer(() => {
      subscribed += 1;
      return source.pipe(finalize(() => (subscribed -= 1)));
    }),
    () => (idle += 1),
  );
  let last: KeyedList<KeySnapshot> | undefined;
  const send = (snapshots: KeySnapshot[]): void => {
    last = keyedLike(snapshots, last);
    source.next({ kind: 'snapshot', prefix: 'p/', keys: last, meta });
  };
  const seen = (key: string) => {
    const events: KeyEvent[] = [];
    let completed = false;
    const subscription = router.key(key).subscribe({
      next: (e) => events.push(e),
      complete: () => (completed = true),
    });
    return { events, subscription, completed: () => completed };
  };
  return { source, router, send, seen, subscribed: () => subscribed, idle: () => idle };
}

describe('PrefixRouter', () => {
  it('tells a key only of answers in which its snapshot changed, while the keys stay the same', () => {
    const { send, seen } = setUp();
    const a = seen('p/a');
    const b = seen('p/b');
    const sa = snapshot('p/a', 1n);
    send([sa, snapshot('p/b', 2n)]);
    expect([a.events.length, b.events.length]).toEqual([1, 1]);
    send([sa, snapshot('p/b', 3n)]);
    expect([a.events.length, b.events.length]).toEqual([1, 2]);
    // A key added: every key is told (the positions moved).
    send([sa, snapshot('p/b', 3n), snapshot('p/c', 4n)]);
    expect([a.events.length, b.events.length]).toEqual([2, 3]);
  });

  it('tells a key that is absent from the prefix that it is missing, and a late key the current state', () => {
    const { send, seen } = setUp();
    seen('p/a');
    send([snapshot('p/a', 1n)]);
    const late = seen('p/zz');
    expect(late.events.map((e) => e.kind)).toEqual(['key-missing']);
  });

  it('subscribes to the prefix once while keys are followed, and lets go after the last', () => {
    const { seen, subscribed, idle } = setUp();
    const a = seen('p/a');
    const b = seen('p/b');
    expect(subscribed()).toBe(1);
    a.subscription.unsubscribe();
    expect(subscribed()).toBe(1);
    b.subscription.unsubscribe();
    expect([subscribed(), idle()]).toEqual([0, 1]);
  });

  it('completes every key when the prefix completes (close())', () => {
    const { source, seen } = setUp();
    const a = seen('p/a');
    const b = seen('p/b');
    source.complete();
    expect([a.completed(), b.completed()]).toEqual([true, true]);
  });
});

describe('KeyGroups', () => {
  it('coalesces a group at minKeys: the keys that joined before are told, the joining key reads it', () => {
    const groups = new KeyGroups(3);
    const told: string[] = [];
    const a = groups.join('g', () => told.push('a'));
    const b = groups.join('g', () => told.push('b'));
    const other = groups.join('h', () => told.push('other'));
    expect([a.coalesced, b.coalesced, other.coalesced]).toEqual([false, false, false]);
    b.leave();
    b.leave(); // once
    const c = groups.join('g', () => told.push('c'));
    expect(c.coalesced).toBe(false);
    const d = groups.join('g', () => told.push('d'));
    expect(d.coalesced).toBe(true);
    expect(told).toEqual(['a', 'c']);
    // Stays coalesced while any key is left; an emptied group starts over.
    a.leave();
    c.leave();
    expect(groups.join('g', () => told.push('e')).coalesced).toBe(true);
    d.leave();
  });

  it('starts a coalesced group over once it is empty', () => {
    const groups = new KeyGroups(2);
    const a = groups.join('g', () => undefined);
    const b = groups.join('g', () => undefined);
    expect(b.coalesced).toBe(true);
    a.leave();
    b.leave();
    expect(groups.join('g', () => undefined).coalesced).toBe(false);
  });
});

describe('topLevelFolder', () => {
  it('groups a key under its first folder; a key without one is not grouped', () => {
    expect(topLevelFolder('service/db/leader')).toBe('service/');
    expect(topLevelFolder('leader')).toBeNull();
    expect(topLevelFolder('service/')).toBeNull();
  });
});
