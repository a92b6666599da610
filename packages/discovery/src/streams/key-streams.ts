/**
 * The events of single keys: one blocking query per key and read scope, or, once
 * enough keys of one prefix are followed (coalescing), that prefix's one query.
 */
import type { Observable } from 'rxjs';
import { type CoalesceOptions, KeyGroups, groupedKey } from '../key/coalesce.js';
import { followKey } from '../key/follow-key.js';
import type { KeyEvent } from '../key/key-snapshot.js';
import type { Sessions } from '../sessions/sessions.js';
import { PendingReads } from '../watch/pending-reads.js';
import { type ReadScope, scopeId } from '../wire/requests.js';
import type { PrefixStreams } from './prefix-streams.js';
import type { Queries } from './queries.js';
import type { StreamRegistry } from './registry.js';
import type { Telemetry } from '../observe/telemetry.js';

export class KeyStreams {
  readonly #groups: KeyGroups | undefined;

  constructor(
    private readonly registry: StreamRegistry,
    private readonly queries: Queries,
    private readonly sessions: Sessions,
    private readonly prefixes: PrefixStreams,
    private readonly coalesce: CoalesceOptions | undefined,
    private readonly telemetry: Telemetry,
  ) {
    this.#groups = coalesce ? new KeyGroups(coalesce.minKeys) : undefined;
  }

  /** The key's events, shared by every call of the same read scope (`scopeId('key', scope)`). */
  events(scope: ReadScope): Observable<KeyEvent> {
    const id = scopeId('key', scope);
    // Followed once however many subscribers, coalesced or not (consul_leader.followed).
    const followed = this.telemetry.following<KeyEvent>({ type: 'key', key: scope.key, id });
    return this.registry.shared(id, () => {
      const groups = this.#groups;
      const prefix = this.coalesce?.prefixOf(scope.key) ?? null;
      if (!groups || prefix === null || !scope.key.startsWith(prefix))
        return this.#single(scope).pipe(followed);
      const prefixScope: ReadScope = { ...scope, key: prefix };
      const group = scopeId('prefix', prefixScope);
      return groupedKey(
        (onCoalesced) => groups.join(group, onCoalesced),
        () => this.#single(scope),
        () => this.prefixes.router(prefixScope).key(scope.key),
      ).pipe(followed);
    });
  }

  /** The key's own blocking query, its session joined before its next read. */
  #single(scope: ReadScope): Observable<KeyEvent> {
    const joins = new PendingReads();
    const directory = this.sessions.directoryOf(scope);
    const events = followKey(scope.key, {
      kv$: this.queries.key(scope, { beforeNextRead: () => joins.settled() }),
      session: this.sessions.joiner(scope, joins, directory),
    });
    return directory?.whileFollowing(events) ?? events;
  }
}
