/**
 * How a key's session is joined: from the followed session list of its scope when
 * `watchSessions` is on and the list names it (session-directory.ts), else by one
 * `/v1/session/info` read, tracked so that the key's next blocking read waits for it.
 */
import { type Observable, of } from 'rxjs';
import type { LeaderSession } from '@consul-leader/types';
import type { StreamRegistry } from '../streams/registry.js';
import type { Queries } from '../streams/queries.js';
import type { PendingReads } from '../watch/pending-reads.js';
import type { RetryingReadEvent } from '../watch/retrying-read.js';
import { type ReadScope, scopeId } from '../wire/requests.js';
import { SessionDirectory } from './session-directory.js';

export class Sessions {
  // One list followed per datacenter, token and consistency, for as long as a key or prefix
  // of that scope is followed (a directory is kept, idle, after).
  readonly #directories = new Map<string, SessionDirectory>();

  constructor(
    private readonly queries: Queries,
    private readonly registry: StreamRegistry,
    /** `watchSessions`, and the `wait` of the list's query. */
    private readonly follow: { readonly enabled: boolean; readonly waitMs: number },
  ) {}

  /** The session directory of `scope`, or undefined without `watchSessions`. */
  directoryOf(scope: ReadScope): SessionDirectory | undefined {
    if (!this.follow.enabled) return undefined;
    const listScope: ReadScope = { ...scope, key: '', waitMs: this.follow.waitMs };
    const id = scopeId('sessions', listScope);
    let directory = this.#directories.get(id);
    if (!directory) {
      directory = new SessionDirectory(this.registry.untilClosed(this.queries.sessionList(listScope)));
      this.#directories.set(id, directory);
    }
    return directory;
  }

  /** A session's info: from the directory when it names the session, else one tracked read. */
  joiner(
    scope: ReadScope,
    joins: PendingReads,
    directory: SessionDirectory | undefined,
  ): (id: string) => Observable<RetryingReadEvent<LeaderSession | null>> {
    return (id) => {
      const known = directory?.get(id);
      return known ? of({ type: 'value', value: known }) : this.queries.session(scope, id, joins);
    };
  }
}
