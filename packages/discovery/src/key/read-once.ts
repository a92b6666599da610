/** `current()`'s read: the key and its session, once, non-blocking. */
import { DiscoveryClosedError } from '../errors.js';
import { readIndex, readMeta } from '../wire/headers.js';
import { readKvResponse } from '../wire/kv.js';
import { type ReadScope, readSessionOnce, sendKvRead } from '../wire/requests.js';
import { type ConsulTransport, RequestAbortedError } from '../wire/transport.js';
import { type KeySnapshot, heldBy } from './key-snapshot.js';

/** One non-blocking read of the key joined with its session (for `current()`). */
export async function readKeyOnce(
  transport: ConsulTransport,
  scope: ReadScope,
  signal: AbortSignal,
): Promise<KeySnapshot> {
  try {
    const res = await sendKvRead(transport, scope, 0n, signal);
    const read = readKvResponse(res, scope.key);
    const meta = readMeta(res.headers, readIndex(res.headers));
    const { key } = scope;
    if (read.kind === 'missing') return { kind: 'key-missing', key, meta };
    const { entry } = read;
    if (entry.session === null) return { kind: 'no-session', key, entry, meta };
    return heldBy(entry, await readSessionOnce(transport, scope, entry.session, signal), meta);
  } catch (error) {
    if (error instanceof RequestAbortedError) throw new DiscoveryClosedError();
    throw error;
  }
}
