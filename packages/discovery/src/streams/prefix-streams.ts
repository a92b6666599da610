/**
 * The events of prefixes: one recursive blocking query per prefix and read scope, or,
 * for a big prefix (`splitPrefixes`), its sub-prefix queries side by side
 * (prefix/split-prefix.ts); and the router that tells coalesced keys of their changes.
 */
import type { Observable } from 'rxjs';
import type { SplitSettings } from '../config/resolve.js';
import { PrefixRouter } from '../key/coalesce.js';
import { type PrefixEvent, followPrefix } from '../prefix/follow-prefix.js';
import { splitPrefixQuery } from '../prefix/split-prefix.js';
import type { Sessions } from '../sessions/sessions.js';
import { PendingReads } from '../watch/pending-reads.js';
import { KvListReader } from '../wire/kv-list.js';
import { type ReadScope, scopeId } from '../wire/requests.js';
import type { ListEvent, Queries } from './queries.js';
import type { StreamRegistry } from './registry.js';

export class PrefixStreams {
  readonly #routers = new Map<string, PrefixRouter>();

  constructor(
    private readonly registry: StreamRegistry,
    private readonly queries: Queries,
    private readonly sessions: Sessions,
    private readonly split: SplitSettings | undefined,
  ) {}

  /** The prefix's events, shared by every call of the same read scope (`scopeId('prefix', scope)`). */
  events(scope: ReadScope): Observable<PrefixEvent> {
    return this.registry.shared(scopeId('prefix', scope), () => {
      const joins = new PendingReads();
      const directory = this.sessions.directoryOf(scope);
      const events = followPrefix(scope.key, {
        kv$: this.#answers(scope, joins),
        session: this.sessions.joiner(scope, joins, directory),
        sessions: () => this.queries.sessions(scope, joins),
        ...(directory ? { known: (id: string) => directory.get(id) } : {}),
      });
      return directory?.whileFollowing(events) ?? events;
    });
  }

  /** The router of the coalesced keys of one prefix and read scope. */
  router(scope: ReadScope): PrefixRouter {
    const id = scopeId('prefix', scope);
    let router = this.#routers.get(id);
    if (!router) {
      router = new PrefixRouter(this.events(scope), () => this.#routers.delete(id));
      this.#routers.set(id, router);
    }
    return router;
  }

  /** The prefix's answers: one recursive query, or its sub-prefixes' laid end to end. */
  #answers(scope: ReadScope, joins: PendingReads): Observable<ListEvent> {
    // Reads each answer against the last one: keys not written since keep their objects.
    const reader = new KvListReader(scope.key);
    const whole = (): Observable<ListEvent> =>
      this.queries.recursive(scope, reader, { beforeNextRead: () => joins.settled() });
    if (!this.split) return whole();
    return splitPrefixQuery({
      prefix: scope.key,
      whole,
      subPrefix: (prefix, seed, startIndex) =>
        this.queries.recursive({ ...scope, key: prefix }, new KvListReader(prefix, seed), { startIndex }),
      keys: (startIndex) => this.queries.keyList(scope, startIndex),
      minKeys: this.split.minKeys,
      limits: this.split.limits,
      beforeNextEmit: () => joins.settled(),
    });
  }
}
