/** Values the unit tests build again and again (not part of the package: excluded from the build). */
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import { KeyedList, indexOf } from './prefix/keyed-list.js';

/** The read meta of an answer at `index` from a server that knows its Raft leader. */
export const readMeta = (index: bigint): ConsulReadMeta => ({ index, lastContactMs: 0, knownLeader: true });

/** A session without TTL, lock-delay or checks unless given. */
export const sessionInfo = (id: string, over: Partial<LeaderSession> = {}): LeaderSession => ({
  id,
  name: id,
  node: 'node-1',
  checks: [],
  behavior: 'release',
  ttl: '',
  ttlMs: null,
  lockDelayMs: 0,
  createIndex: 1n,
  modifyIndex: 1n,
  ...over,
});

/**
 * A list over `list` as KvListReader and followPrefix hand them on: sharing
 * `like`'s index when the keys are the same, in the same order.
 */
export function keyedLike<V extends { readonly key: string }>(
  list: readonly V[],
  like?: KeyedList<{ readonly key: string }>,
): KeyedList<V> {
  if (like && like.list.length === list.length && list.every((v, i) => v.key === like.list[i]?.key)) {
    return new KeyedList(list, like.index);
  }
  return new KeyedList(list, indexOf(list));
}
