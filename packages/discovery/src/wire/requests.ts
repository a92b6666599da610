/** The HTTP reads of a leader key and its session, for one read scope. */
import type { LeaderSession } from '@consul-leader/types';
import type { Consistency } from '../config/options.js';
import { formatWait } from './duration.js';
import { readSessionListResponse, readSessionResponse } from './session.js';
import type { ConsulResponse, ConsulTransport } from './transport.js';
import { type TrackRequest, trackedRead } from '../observe/requests.js';
import { BLOCKING_TIMEOUT_MARGIN_MS } from '../config/defaults.js';

/** Where and how a key is read. */
export interface ReadScope {
  readonly key: string;
  readonly consistency: Consistency;
  readonly waitMs: number;
  readonly requestTimeoutMs: number;
  readonly dc?: string;
  readonly token?: string;
  /** Consul Enterprise namespace and admin partition (`?ns=`, `?partition=`). */
  readonly namespace?: string;
  readonly partition?: string;
}

/** Consul documents that it may add up to wait/16 of jitter to a blocking read. */
export function blockingTimeoutMs(waitMs: number): number {
  return Math.ceil(waitMs + waitMs / 16 + BLOCKING_TIMEOUT_MARGIN_MS);
}

function baseQuery(scope: ReadScope): Record<string, string> {
  const query: Record<string, string> = {};
  if (scope.consistency === 'stale') query.stale = '';
  if (scope.consistency === 'consistent') query.consistent = '';
  if (scope.dc) query.dc = scope.dc;
  if (scope.namespace) query.ns = scope.namespace;
  if (scope.partition) query.partition = scope.partition;
  return query;
}

/** One id per kind of read and scope: streams of the same id are the same stream. */
export function scopeId(kind: string, scope: ReadScope): string {
  const { key, consistency, waitMs, dc = '', token = '', namespace = '', partition = '' } = scope;
  return JSON.stringify([kind, key, consistency, waitMs, dc, token, namespace, partition]);
}

/** A read blocking on `index` when it is above 0, else a plain read. */
function sendRead(
  transport: ConsulTransport,
  scope: ReadScope,
  request: {
    readonly path: string;
    readonly params?: Record<string, string>;
    readonly query: Record<string, string>;
  },
  index: bigint,
  signal: AbortSignal,
): Promise<ConsulResponse> {
  const blocking = index > 0n;
  const query = { ...baseQuery(scope), ...request.query };
  if (blocking) {
    query.index = index.toString();
    query.wait = formatWait(scope.waitMs);
  }
  return transport.get({
    path: request.path,
    ...(request.params ? { params: request.params } : {}),
    query,
    token: scope.token,
    timeoutMs: blocking ? blockingTimeoutMs(scope.waitMs) : scope.requestTimeoutMs,
    signal,
  });
}

/**
 * A KV read of the key (with `recurse`, of every key under it as a prefix):
 * blocking on `index` when it is above 0, else a plain read.
 */
export function sendKvRead(
  transport: ConsulTransport,
  scope: ReadScope,
  index: bigint,
  signal: AbortSignal,
  recurse = false,
): Promise<ConsulResponse> {
  const query: Record<string, string> = recurse ? { recurse: '' } : {};
  return sendRead(transport, scope, { path: '/kv/{key}', params: { key: scope.key }, query }, index, signal);
}

/** The keys under the scope's key as a prefix (`?keys`: no values), blocking on `index` when it is above 0. */
export function sendKvKeysRead(
  transport: ConsulTransport,
  scope: ReadScope,
  index: bigint,
  signal: AbortSignal,
): Promise<ConsulResponse> {
  return sendRead(
    transport,
    scope,
    { path: '/kv/{key}', params: { key: scope.key }, query: { keys: '' } },
    index,
    signal,
  );
}

/** `GET /v1/session/list` of the scope's datacenter, blocking on `index` when it is above 0. */
export function sendSessionListRead(
  transport: ConsulTransport,
  scope: ReadScope,
  index: bigint,
  signal: AbortSignal,
): Promise<ConsulResponse> {
  return sendRead(transport, scope, { path: '/session/list', query: {} }, index, signal);
}

/** One session's info (null: the session is gone), told to `track`. */
export function readSessionOnce(
  transport: ConsulTransport,
  scope: ReadScope,
  id: string,
  signal: AbortSignal,
  track?: TrackRequest,
): Promise<LeaderSession | null> {
  const send = (): Promise<ConsulResponse> =>
    transport.get({
      path: '/session/info/{id}',
      params: { id },
      query: baseQuery(scope),
      token: scope.token,
      timeoutMs: scope.requestTimeoutMs,
      signal,
    });
  return trackedRead(track, send, (res) => readSessionResponse(res, id));
}

/** Every session the token may read (one request instead of one per session), told to `track`. */
export function readSessionListOnce(
  transport: ConsulTransport,
  scope: ReadScope,
  signal: AbortSignal,
  track?: TrackRequest,
): Promise<Map<string, LeaderSession>> {
  return trackedRead(track, () => sendSessionListRead(transport, scope, 0n, signal), readSessionListResponse);
}
