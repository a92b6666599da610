import { describe, expect, it } from 'vitest';
import { NEVER, Observable, Subject } from 'rxjs';
import type { LeaderSession } from '@consul-leader/types';
import { ConsulUnreachableError } from '../errors.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import { readMeta, sessionInfo } from '../test-fixtures.js';
import { SessionDirectory } from './session-directory.js';

type ListEvent = BlockingQueryEvent<ReadonlyMap<string, LeaderSession>>;

function listOf(...ids: string[]): ListEvent {
  return { type: 'result', value: new Map(ids.map((id) => [id, sessionInfo(id)])), meta: readMeta(1n) };
}

describe('SessionDirectory', () => {
  it('knows the sessions of the last list while followed, one list for every follower', () => {
    const lists = new Subject<ListEvent>();
    let subscriptions = 0;
    const list$ = new Observable<ListEvent>((subscriber) => {
      subscriptions += 1;
      return lists.subscribe(subscriber);
    });
    const directory = new SessionDirectory(list$);
    const a = directory.whileFollowing(NEVER).subscribe();
    const b = directory.whileFollowing(NEVER).subscribe();
    expect(subscriptions).toBe(1);
    expect(directory.get('s1')).toBeUndefined();

    lists.next(listOf('s1', 's2'));
    expect(directory.get('s1')?.id).toBe('s1');
    lists.next(listOf('s2', 's3'));
    expect(directory.get('s1')).toBeUndefined();
    expect(directory.get('s3')?.id).toBe('s3');

    // A failed read keeps the last list.
    lists.next({
      type: 'error',
      error: new ConsulUnreachableError('refused', 'down'),
      attempt: 1,
      retryInMs: 10,
    });
    expect(directory.get('s3')?.id).toBe('s3');

    a.unsubscribe();
    expect(directory.get('s3')?.id).toBe('s3');
    b.unsubscribe();
    // Not followed: nothing is known, and the next follower starts the list again.
    expect(directory.get('s3')).toBeUndefined();
    directory.whileFollowing(NEVER).subscribe().unsubscribe();
    expect(subscriptions).toBe(2);
  });

  it('passes the source through', () => {
    const directory = new SessionDirectory(NEVER);
    const seen: number[] = [];
    let completed = false;
    directory.whileFollowing(new Observable<number>((s) => (s.next(1), s.next(2), s.complete()))).subscribe({
      next: (v) => seen.push(v),
      complete: () => (completed = true),
    });
    expect(seen).toEqual([1, 2]);
    expect(completed).toBe(true);
  });
});
