/**
 * One key followed live: the blocking query on the key, each answer joined
 * with `/v1/session/info` of the session holding it.
 */
import { type Observable, distinctUntilChanged, map, of, switchMap } from 'rxjs';
import type { LeaderSession } from '@consul-leader/types';
import type { KvRead } from '../wire/kv.js';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';
import type { RetryingReadEvent } from '../watch/retrying-read.js';
import { withLastKnown } from '../watch/last-known.js';
import { type KeyEvent, type KeySnapshot, heldBy, sameKeyEvent } from './key-snapshot.js';
import { SESSIONS_REMEMBERED } from '../config/defaults.js';

export interface FollowKeyDeps {
  /** The key's blocking query. */
  readonly kv$: Observable<BlockingQueryEvent<KvRead>>;
  /** Reads a session's info, retried until it answers (null: the session is gone). */
  readonly session: (id: string) => Observable<RetryingReadEvent<LeaderSession | null>>;
}

type Outage = Omit<Extract<KeyEvent, { kind: 'unreachable' }>, 'lastKnown'>;
type Step = KeySnapshot | Outage;

/**
 * Session info is read once per session id and reused for the key's last few
 * sessions: Consul never changes a session once created, so a contender that
 * takes the key again is emitted from the KV answer alone. `switchMap` drops a
 * session answer that arrives after the key moved on, so an older leader is
 * never emitted after a newer one.
 */
export function followKey(key: string, deps: FollowKeyDeps): Observable<KeyEvent> {
  // In the order last used (a Map keeps insertion order): the first is the one to forget.
  const cached = new Map<string, LeaderSession | null>();
  const remember = (id: string, session: LeaderSession | null): void => {
    cached.delete(id);
    cached.set(id, session);
    if (cached.size > SESSIONS_REMEMBERED) cached.delete(cached.keys().next().value as string);
  };

  const join = (event: BlockingQueryEvent<KvRead>): Observable<Step> => {
    if (event.type === 'error') {
      const { error, attempt, retryInMs } = event;
      return of({ kind: 'unreachable', key, error, attempt, retryInMs });
    }
    const { value: read, meta } = event;
    if (read.kind === 'missing') return of({ kind: 'key-missing', key, meta });
    const { entry } = read;
    const id = entry.session;
    if (id === null) return of({ kind: 'no-session', key, entry, meta });
    const known = cached.get(id);
    if (known !== undefined) {
      remember(id, known);
      return of(heldBy(entry, known, meta));
    }
    return deps.session(id).pipe(
      map((step): Step => {
        if (step.type === 'error') {
          const { error, attempt, retryInMs } = step;
          return { kind: 'unreachable', key, error, attempt, retryInMs };
        }
        remember(id, step.value);
        return heldBy(entry, step.value, meta);
      }),
    );
  };

  return deps.kv$.pipe(
    switchMap(join),
    withLastKnown<KeySnapshot, Outage>(),
    distinctUntilChanged(sameKeyEvent),
  );
}
