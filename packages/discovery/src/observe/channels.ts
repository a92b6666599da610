/**
 * `node:diagnostics_channel`: a `TracingChannel` named `consul-leader:request` around every
 * HTTP request to Consul, and the channel `consul-leader:state` for every state emitted.
 * Nothing is built while no one subscribes. Contexts hold no token and no credential.
 */
import diagnostics from 'node:diagnostics_channel';
import type { LeaderState } from '../state/states.js';
import type { RequestInfo, RequestKind, RequestResult } from './request-types.js';

/** The context object of `consul-leader:request`'s events. */
export interface RequestChannelContext {
  readonly kind: RequestKind;
  /** The key or prefix read (for session reads: the key or prefix whose sessions they are). */
  readonly key: string;
  readonly blocking: boolean;
  /** The index sent (0n for a non-blocking read). */
  readonly index: bigint;
  /** At the end: the HTTP status of the answer (errors included). */
  statusCode?: number;
  /** At the end: the answer's `X-Consul-Index`. */
  resultIndex?: bigint;
  /** At the end: why the request failed (a `LeaderDiscoveryError`, or the abort). */
  error?: Error;
}

/** The message of `consul-leader:state`. */
export interface StateChannelMessage {
  readonly key: string;
  readonly state: LeaderState<unknown>;
}

export const REQUEST_CHANNEL = 'consul-leader:request';
export const STATE_CHANNEL = 'consul-leader:state';

const requests = diagnostics.tracingChannel<RequestChannelContext>(REQUEST_CHANNEL);
const states = diagnostics.channel(STATE_CHANNEL);

/** Aborted requests end with this as their `error` (the SDK ended them: an unsubscribe or close()). */
class RequestAbortedByCaller extends Error {
  override readonly name = 'AbortError';
}

/**
 * Publishes a request's start (as `tracePromise` would: `start`, then `end` of its
 * synchronous part); the function returned publishes its end (`error` when it failed, then
 * `asyncStart` and `asyncEnd`). Undefined when no one listens.
 */
export function traceRequest(info: RequestInfo): ((result: RequestResult) => void) | undefined {
  if (!requests.hasSubscribers) return undefined;
  const context: RequestChannelContext = { ...info };
  requests.start.publish(context);
  requests.end.publish(context);
  return (result) => {
    if (result.statusCode !== undefined) context.statusCode = result.statusCode;
    if (result.resultIndex !== undefined) context.resultIndex = result.resultIndex;
    if (result.outcome === 'aborted') context.error = new RequestAbortedByCaller('the request was aborted');
    else if (result.error) context.error = result.error;
    if (context.error) requests.error.publish(context);
    requests.asyncStart.publish(context);
    requests.asyncEnd.publish(context);
  };
}

export function stateListened(): boolean {
  return states.hasSubscribers;
}

export function publishState(key: string, state: LeaderState<unknown>): void {
  if (states.hasSubscribers) states.publish({ key, state } satisfies StateChannelMessage);
}
