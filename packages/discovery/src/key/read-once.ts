/** `current()`'s read: the key and its session, once, non-blocking. */
import { DiscoveryClosedError } from '../errors.js';
import { readIndex, readMeta } from '../wire/headers.js';
import { readKvResponse } from '../wire/kv.js';
import { type ReadScope, readSessionOnce, sendKvRead } from '../wire/requests.js';
import { type ConsulTransport, RequestAbortedError } from '../wire/transport.js';
import { trackedRead } from '../observe/requests.js';
import type { Telemetry } from '../observe/telemetry.js';
import { type KeySnapshot, heldBy } from './key-snapshot.js';

/** One non-blocking read of the key joined with its session (for `current()`). */
export async function readKeyOnce(
  transport: ConsulTransport,
  scope: ReadScope,
  signal: AbortSignal,
  telemetry: Telemetry,
): Promise<KeySnapshot> {
  try {
    const { read, meta } = await trackedRead(
      telemetry.requests('kv', scope.key),
      () => sendKvRead(transport, scope, 0n, signal),
      (res) => ({
        read: readKvResponse(res, scope.key),
        meta: readMeta(res.headers, readIndex(res.headers)),
      }),
    );
    const { key } = scope;
    if (read.kind === 'missing') return { kind: 'key-missing', key, meta };
    const { entry } = read;
    if (entry.session === null) return { kind: 'no-session', key, entry, meta };
    const track = telemetry.requests('session_info', scope.key);
    return heldBy(entry, await readSessionOnce(transport, scope, entry.session, signal, track), meta);
  } catch (error) {
    if (error instanceof RequestAbortedError) throw new DiscoveryClosedError();
    throw error;
  }
}
