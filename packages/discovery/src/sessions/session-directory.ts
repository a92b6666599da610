/**
 * Opt-in (`watchSessions: true`): the sessions of a datacenter, followed with
 * their own blocking query on `/v1/session/list`, so that a new leader's
 * session is usually known before its acquire lands and the acquisition is
 * emitted from the KV answer alone: one round trip instead of two.
 *
 * Info from an older list is safe to use: Consul never changes a session once
 * created, and it clears a key's `Session` in the same Raft apply that destroys
 * the session, so a KV answer that names a session is never older than it.
 */
import { Observable, finalize, share, tap } from 'rxjs';
import type { LeaderSession } from '@consul-leader/types';
import type { BlockingQueryEvent } from '../watch/blocking-query.js';

export class SessionDirectory {
  #known: ReadonlyMap<string, LeaderSession> = new Map();
  readonly #follow: Observable<unknown>;

  /** `list$`: the blocking query on the session list; its failures only cost the round trips it saves. */
  constructor(list$: Observable<BlockingQueryEvent<ReadonlyMap<string, LeaderSession>>>) {
    this.#follow = list$.pipe(
      tap((event) => {
        // A failed read keeps the last list: what it says stays true (see above).
        if (event.type === 'result') this.#known = event.value;
      }),
      finalize(() => {
        this.#known = new Map();
      }),
      share(),
    );
  }

  /** The session's info when the last list named it. */
  get(id: string): LeaderSession | undefined {
    return this.#known.get(id);
  }

  /** `source`, with the session list followed for as long as it is subscribed. */
  whileFollowing<T>(source: Observable<T>): Observable<T> {
    return new Observable<T>((subscriber) => {
      subscriber.add(this.#follow.subscribe({ error: () => undefined }));
      subscriber.add(source.subscribe(subscriber));
    });
  }
}
