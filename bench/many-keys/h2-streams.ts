/**
 * Counts the HTTP/2 streams of a case 3 SDK thread: over TLS, the TCP
 * pass-through in front of the agent sees connections but not the requests
 * inside them. Wraps `http2.connect` of this thread (each worker thread has
 * its own `node:http2` module object; the SDK calls `http2.connect` on it),
 * and the `request` method of each session it returns: a stream is counted
 * when it is opened, by its `:path`. Install before the SDK is loaded.
 */
import http2 from 'node:http2';
import { syncBuiltinESMExports } from 'node:module';
import type { StreamCounts } from './protocol.js';

export function countHttp2Streams(): () => StreamCounts {
  let kv = 0;
  let session = 0;
  let all = 0;
  const kvOpen = new Set<http2.ClientHttp2Stream>();
  const pathOf = new WeakMap<http2.ClientHttp2Stream, string>();
  const connect = http2.connect.bind(http2) as (...args: unknown[]) => http2.ClientHttp2Session;
  const counted = (...args: unknown[]): http2.ClientHttp2Session => {
    const client = connect(...args);
    const request = client.request.bind(client);
    client.request = (headers, options) => {
      const stream = request(headers, options);
      const path = String(headers?.[':path'] ?? '');
      all += 1;
      if (path.startsWith('/v1/kv/')) {
        kv += 1;
        kvOpen.add(stream);
        pathOf.set(stream, path);
        stream.once('close', () => kvOpen.delete(stream));
      } else if (path.startsWith('/v1/session/')) {
        session += 1;
      }
      return stream;
    };
    return client;
  };
  http2.connect = counted as typeof http2.connect;
  syncBuiltinESMExports();
  return () => ({
    kv,
    session,
    all,
    kvOpen: kvOpen.size,
    kvOpenPaths: [...kvOpen].map((stream) => pathOf.get(stream) ?? ''),
  });
}
