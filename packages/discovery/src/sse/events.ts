/**
 * Pure serialisation of `watchPrefix()` into Server-Sent Events: which events a
 * new `PrefixState` gives after the previous one, and their wire format. No I/O
 * here (see serve.ts for the HTTP glue), so any server or framework can use it.
 *
 * Payloads are JSON with bigints as decimal strings (`bigintReplacer`) and errors
 * as `{ code, message, status? }` (their `toJSON()`): what `leaderStateSchema()`
 * of `@consul-leader/types` validates on the other side.
 */
import { type ErrorInfo, bigintReplacer } from '@consul-leader/types';
import type { LeaderState, PrefixOutage, PrefixState } from '../discovery.js';
import { InvalidOptionError } from '../errors.js';
import { jsonOr, writableState } from '../state/writable-state.js';

/** `consul` event: whether Consul answers the prefix's query. */
export interface ConsulOutageInfo extends ErrorInfo {
  /** Failed reads in a row (1 for the first). */
  readonly attempt: number;
  readonly retryInMs: number;
}

/** One event of the stream, before serialisation. */
export type LeaderEvent<T> =
  /** First event of a stream: every key's state (sorted by key) and whether Consul answers. */
  | {
      readonly event: 'snapshot';
      readonly data: {
        readonly prefix: string;
        readonly states: readonly LeaderState<T>[];
        readonly unreachable: ConsulOutageInfo | null;
      };
    }
  /** A key whose state changed (or a key that appeared). */
  | { readonly event: 'state'; readonly data: LeaderState<T> }
  /** A key that is no longer under the prefix. */
  | { readonly event: 'removed'; readonly data: { readonly key: string } }
  /** Consul stopped or started answering, or failed again (the outage's `attempt`, `retryInMs`, error). */
  | { readonly event: 'consul'; readonly data: { readonly unreachable: ConsulOutageInfo | null } };

/** The event names, for clients (`EventSource.addEventListener(name, ...)`). */
export const LEADER_EVENT_NAMES = ['snapshot', 'state', 'removed', 'consul'] as const;

export function outageInfo(outage: PrefixOutage | null): ConsulOutageInfo | null {
  if (!outage) return null;
  const { code, message, status } = outage.error.toJSON();
  return status === undefined
    ? { code, message, attempt: outage.attempt, retryInMs: outage.retryInMs }
    : { code, message, status, attempt: outage.attempt, retryInMs: outage.retryInMs };
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The outage's own news: the key's last known state and error are the same as before. */
function onlyRetried<T>(before: LeaderState<T> | undefined, after: LeaderState<T>): boolean {
  return (
    before?.status === 'unreachable' &&
    after.status === 'unreachable' &&
    before.lastKnown === after.lastKnown &&
    before.error.code === after.error.code &&
    before.error.message === after.error.message
  );
}

/**
 * The events that tell a client who saw `previous` (undefined: nothing yet) about
 * `next`: a `snapshot` first; then `removed` for keys that disappeared, `state`
 * for keys whose state object changed (unchanged keys keep their objects, so this
 * is an identity check) and `consul` when the outage starts, ends or fails again.
 * While Consul cannot be read, a key whose state differs only by the retry count is
 * not sent again: the one `consul` event per retry carries it, not one event per key.
 */
export function leaderEvents<T>(
  previous: PrefixState<T> | undefined,
  next: PrefixState<T>,
): LeaderEvent<T>[] {
  if (!previous) {
    const keys = [...next.states.keys()].sort(byKey);
    return [
      {
        event: 'snapshot',
        data: {
          prefix: next.prefix,
          states: keys.map((key) => next.states.get(key) as LeaderState<T>),
          unreachable: outageInfo(next.unreachable),
        },
      },
    ];
  }
  const events: LeaderEvent<T>[] = [];
  const was = previous.unreachable;
  const is = next.unreachable;
  if (
    (was === null) !== (is === null) ||
    (was && is && (was.attempt !== is.attempt || was.error.code !== is.error.code))
  ) {
    events.push({ event: 'consul', data: { unreachable: outageInfo(is) } });
  }
  for (const key of [...previous.states.keys()].sort(byKey)) {
    if (!next.states.has(key)) events.push({ event: 'removed', data: { key } });
  }
  for (const key of [...next.states.keys()].sort(byKey)) {
    const state = next.states.get(key) as LeaderState<T>;
    const before = previous.states.get(key);
    if (before !== state && !onlyRetried(before, state)) events.push({ event: 'state', data: state });
  }
  return events;
}

/** JSON of a payload: bigints as decimal strings, errors through their `toJSON()`. */
export function eventJson(data: unknown): string {
  return JSON.stringify(data, bigintReplacer);
}

/**
 * The JSON of an event's payload. A state whose descriptor cannot be written as JSON
 * (nested thousands deep, say) is sent as `invalid`, with the reason and the raw value
 * (see `writableState`): one bad key neither ends the stream nor hides the others.
 */
export function leaderEventJson<T>(event: LeaderEvent<T>): string {
  switch (event.event) {
    case 'snapshot': {
      // Each key written on its own: judged as its own `state` event would be.
      const { prefix, states, unreachable } = event.data;
      const list = states.map(stateJson).join(',');
      return `{"prefix":${eventJson(prefix)},"states":[${list}],"unreachable":${eventJson(unreachable)}}`;
    }
    case 'state':
      return stateJson(event.data);
    default:
      return eventJson(event.data);
  }
}

function stateJson<T>(state: LeaderState<T>): string {
  return jsonOr(state, bigintReplacer, () => writableState(state, bigintReplacer));
}

/** One event in the `text/event-stream` format (`id`, `event`, one `data:` line per line of the data). */
export function formatSseEvent(id: number, event: string, data: string): string {
  if (/[\r\n]/.test(event))
    throw new InvalidOptionError('invalid option event: an SSE event name cannot hold a line break');
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`);
  return `id: ${id}\nevent: ${event}\n${lines.join('')}\n`;
}

/** A comment line (ignored by clients; keeps proxies from closing an idle stream). */
export function formatSseComment(text: string): string {
  return `${text
    .split(/\r\n|\r|\n/)
    .map((line) => `: ${line}\n`)
    .join('')}\n`;
}

/** The `retry:` field: how long a client waits before reconnecting. */
export function formatSseRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}
