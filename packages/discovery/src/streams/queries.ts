/**
 * Every read a discovery makes of Consul, for one read scope, built in one place: the
 * blocking queries (a key, a prefix or sub-prefix, a key list, the session list) with
 * the discovery's retry and wake-up limits, and the retried one-off session reads.
 */
import type { Observable } from 'rxjs';
import type { LeaderSession } from '@consul-leader/types';
import type { ResolvedDiscoveryOptions } from '../config/options.js';
import { KEY_LIST_WAKEUPS } from '../config/defaults.js';
import {
  type BlockingQueryEvent,
  type BlockingQueryOptions,
  blockingQuery,
} from '../watch/blocking-query.js';
import type { PendingReads } from '../watch/pending-reads.js';
import { type RetryingReadEvent, retryingRead } from '../watch/retrying-read.js';
import { type KvEntry, type KvRead, readKvKeys, readKvResponse } from '../wire/kv.js';
import type { KvListReader } from '../wire/kv-list.js';
import {
  type ReadScope,
  readSessionListOnce,
  readSessionOnce,
  sendKvKeysRead,
  sendKvRead,
  sendSessionListRead,
} from '../wire/requests.js';
import { readSessionListResponse } from '../wire/session.js';
import type { ConsulResponse, ConsulTransport } from '../wire/transport.js';
import type { RequestKind } from '../observe/request-types.js';
import type { Telemetry } from '../observe/telemetry.js';

export type ListEvent = BlockingQueryEvent<ReadonlyMap<string, KvEntry>>;
/** What a query may add to the loop's defaults. */
export type QueryExtras = Partial<
  Pick<BlockingQueryOptions<unknown>, 'beforeNextRead' | 'startIndex' | 'idleWakeups'>
>;

export class Queries {
  constructor(
    private readonly transport: ConsulTransport,
    private readonly defaults: Pick<ResolvedDiscoveryOptions, 'retry' | 'idleWakeups'>,
    private readonly telemetry: Telemetry,
  ) {}

  /** The blocking query of one key. */
  key(scope: ReadScope, extras: QueryExtras = {}): Observable<BlockingQueryEvent<KvRead>> {
    return this.#query(
      'kv',
      scope,
      (index, signal) => sendKvRead(this.transport, scope, index, signal),
      (res) => readKvResponse(res, scope.key),
      extras,
    );
  }

  /** The recursive blocking query of `scope.key` (a prefix, or a sub-prefix of a split one). */
  recursive(scope: ReadScope, reader: KvListReader, extras: QueryExtras = {}): Observable<ListEvent> {
    return this.#query(
      'kv_recurse',
      scope,
      (index, signal) => sendKvRead(this.transport, scope, index, signal, true),
      (res) => reader.read(res),
      extras,
    );
  }

  /** The blocking query of the names under a prefix (`?keys`), its idle wake-ups few. */
  keyList(scope: ReadScope, startIndex: bigint): Observable<BlockingQueryEvent<readonly string[]>> {
    return this.#query(
      'kv_keys',
      scope,
      (index, signal) => sendKvKeysRead(this.transport, scope, index, signal),
      readKvKeys,
      { idleWakeups: KEY_LIST_WAKEUPS, startIndex },
    );
  }

  /** The blocking query of the datacenter's sessions. */
  sessionList(scope: ReadScope): Observable<BlockingQueryEvent<ReadonlyMap<string, LeaderSession>>> {
    return this.#query(
      'session_list',
      scope,
      (index, signal) => sendSessionListRead(this.transport, scope, index, signal),
      readSessionListResponse,
    );
  }

  /** One session's info, retried until Consul answers (null: the session is gone); `joins` tracks it. */
  session(
    scope: ReadScope,
    id: string,
    joins: PendingReads,
  ): Observable<RetryingReadEvent<LeaderSession | null>> {
    return retryingRead(
      (signal) =>
        joins.track(
          readSessionOnce(
            this.transport,
            scope,
            id,
            signal,
            this.telemetry.requests('session_info', scope.key),
          ),
        ),
      this.defaults.retry,
    );
  }

  /** Every session at once, retried until Consul answers; `joins` tracks it. */
  sessions(scope: ReadScope, joins: PendingReads): Observable<RetryingReadEvent<Map<string, LeaderSession>>> {
    return retryingRead(
      (signal) =>
        joins.track(
          readSessionListOnce(
            this.transport,
            scope,
            signal,
            this.telemetry.requests('session_list', scope.key),
          ),
        ),
      this.defaults.retry,
    );
  }

  #query<T>(
    kind: RequestKind,
    scope: ReadScope,
    send: (index: bigint, signal: AbortSignal) => Promise<ConsulResponse>,
    read: (res: ConsulResponse) => T,
    extras: QueryExtras = {},
  ): Observable<BlockingQueryEvent<T>> {
    const { retry, idleWakeups } = this.defaults;
    const track = this.telemetry.requests(kind, scope.key);
    return blockingQuery({
      send,
      read,
      retry,
      track,
      ...extras,
      idleWakeups: extras.idleWakeups ?? idleWakeups,
    });
  }
}
