/** Pure mapping from a key's joined snapshot to the public `LeaderState` and `Leader`. */
import type { ErrorInfo, Leader, LeaderState, SettledLeaderState } from '@consul-leader/types';
import type { LeaderDiscoveryError } from '../errors.js';
import type { KvEntry } from '../wire/kv.js';
import { type DecodeOption, decodeDescriptor } from './decode.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import type { KeyEvent, KeySnapshot } from '../key/key-snapshot.js';
import { rememberRaw } from './writable-state.js';

/** How a key's value becomes its descriptor: the `decode` step, then the user's schema. */
export interface Decoding<T> {
  readonly schema: StandardSchemaV1<unknown, T>;
  readonly decode: DecodeOption;
}

function entryFields(entry: KvEntry) {
  const { key, lockIndex, modifyIndex, createIndex, flags } = entry;
  return { key, lockIndex, modifyIndex, createIndex, flags };
}

export function toSettledState<T>(
  snapshot: KeySnapshot,
  decoding: Decoding<T>,
): SettledLeaderState<T, LeaderDiscoveryError> {
  const { key, meta: consul } = snapshot;
  switch (snapshot.kind) {
    case 'key-missing':
    case 'no-session':
    case 'session-gone':
      return { status: 'vacant', key, reason: snapshot.kind, consul };
    case 'held': {
      const { entry, session } = snapshot;
      const decoded = decodeDescriptor(entry.valueBase64, decoding.decode, decoding.schema);
      if (decoded.ok) {
        return {
          status: 'leader',
          key,
          leader: rememberRaw({ ...entryFields(entry), node: decoded.node, session }, entry.valueBase64),
          consul,
        };
      }
      return {
        status: 'invalid',
        key,
        entry: entryFields(entry),
        session,
        raw: decoded.raw,
        error: decoded.error,
        issues: decoded.error.issues,
        consul,
      };
    }
  }
}

/**
 * The mapper of one decoding, shared by every call that uses it (state/decoders.ts). It
 * remembers the state it made for each snapshot, so a snapshot is decoded once, and
 * `lastKnown` of an `unreachable` event is not decoded again.
 */
export function stateMapper<T>(
  decoding: Decoding<T>,
): (event: KeyEvent) => LeaderState<T, LeaderDiscoveryError> {
  const made = new WeakMap<KeySnapshot, SettledLeaderState<T, LeaderDiscoveryError>>();
  const settled = (snapshot: KeySnapshot): SettledLeaderState<T, LeaderDiscoveryError> => {
    let state = made.get(snapshot);
    if (!state) {
      state = toSettledState(snapshot, decoding);
      made.set(snapshot, state);
    }
    return state;
  };
  return (event) => {
    if (event.kind !== 'unreachable') return settled(event);
    const { key, error, attempt, retryInMs, lastKnown } = event;
    return {
      status: 'unreachable',
      key,
      error,
      attempt,
      retryInMs,
      lastKnown: lastKnown ? settled(lastKnown) : null,
    };
  };
}

/**
 * The same public state: a new emission would tell nothing new. A vacant key
 * rewritten while vacant is still just vacant; `unreachable` always differs
 * (its attempt count moves).
 */
export function sameState<T, E extends ErrorInfo>(a: LeaderState<T, E>, b: LeaderState<T, E>): boolean {
  if (a.status === 'unreachable' || b.status === 'unreachable') return false;
  if (a.key !== b.key || a.consul.knownLeader !== b.consul.knownLeader) return false;
  switch (a.status) {
    case 'leader':
      return b.status === 'leader' && sameLeader(a.leader, b.leader);
    case 'vacant':
      return b.status === 'vacant' && a.reason === b.reason;
    case 'invalid':
      return (
        b.status === 'invalid' &&
        a.session.id === b.session.id &&
        a.entry.modifyIndex === b.entry.modifyIndex &&
        a.entry.lockIndex === b.entry.lockIndex
      );
  }
}

/** The same leader: same session, same write of the key. `null` equals `null`. */
export function sameLeader<T>(a: Leader<T> | null, b: Leader<T> | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.key === b.key &&
    a.session.id === b.session.id &&
    a.modifyIndex === b.modifyIndex &&
    a.lockIndex === b.lockIndex
  );
}
