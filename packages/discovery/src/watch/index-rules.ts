/**
 * Consul's blocking-query index rules ("Blocking Queries", implementation
 * details), in one place. Indexes are opaque uint64s, held as bigint.
 */

/** The index sent on a non-blocking read: no `index` parameter at all. */
export const NO_INDEX = 0n;

/**
 * The `index` to send on the next request, given the one sent and the
 * `X-Consul-Index` received:
 * - it went backwards (snapshot restore, restarted agent, stale reads from
 *   different servers): reset to 0, so the next read is non-blocking and fresh;
 * - it is 0 (a Consul bug that makes blocking calls return at once): use 1,
 *   never block on 0;
 * - else the received index.
 */
export function nextIndex(sent: bigint, received: bigint): bigint {
  if (received < sent) return NO_INDEX;
  if (received <= 0n) return 1n;
  return received;
}
