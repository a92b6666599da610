/**
 * What Consul says about one leader key, joined with its session but not yet
 * decoded: the part shared by every subscriber of the key, whatever schema
 * each applies.
 */
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import type { LeaderDiscoveryError } from '../errors.js';
import type { KvEntry } from '../wire/kv.js';

export type KeySnapshot =
  | { readonly kind: 'key-missing'; readonly key: string; readonly meta: ConsulReadMeta }
  | {
      readonly kind: 'no-session';
      readonly key: string;
      readonly entry: KvEntry;
      readonly meta: ConsulReadMeta;
    }
  | {
      readonly kind: 'session-gone';
      readonly key: string;
      readonly entry: KvEntry;
      readonly meta: ConsulReadMeta;
    }
  | {
      readonly kind: 'held';
      readonly key: string;
      readonly entry: KvEntry;
      readonly session: LeaderSession;
      readonly meta: ConsulReadMeta;
    };

/** A key whose entry names a session: `held` when the session exists, else `session-gone`. */
export function heldBy(
  entry: KvEntry,
  session: LeaderSession | null,
  meta: ConsulReadMeta,
): Extract<KeySnapshot, { kind: 'held' | 'session-gone' }> {
  const { key } = entry;
  return session ? { kind: 'held', key, entry, session, meta } : { kind: 'session-gone', key, entry, meta };
}

export interface KeyUnreachable {
  readonly kind: 'unreachable';
  readonly key: string;
  readonly error: LeaderDiscoveryError;
  readonly attempt: number;
  readonly retryInMs: number;
  readonly lastKnown: KeySnapshot | null;
}

export type KeyEvent = KeySnapshot | KeyUnreachable;

/**
 * Same content, whatever the read's index: a wake-up that moved the index but
 * not the entry or its session is no change. Whether the answering server
 * knew a Raft leader is part of the content (a stale answer must be visible). Every write to the key moves its
 * ModifyIndex, so comparing it covers the value.
 */
export function sameKeyEvent(a: KeyEvent, b: KeyEvent): boolean {
  if (a.kind === 'unreachable' || b.kind === 'unreachable') return false;
  if (a.kind !== b.kind || a.meta.knownLeader !== b.meta.knownLeader) return false;
  if (a.kind === 'key-missing') return true;
  const ea = a.entry;
  const eb = (b as Exclude<KeySnapshot, { kind: 'key-missing' }>).entry;
  return ea.modifyIndex === eb.modifyIndex && ea.session === eb.session && ea.lockIndex === eb.lockIndex;
}
