/**
 * An HTTP/2 proxy that ends TLS, for faults inside an HTTP/2 connection: each
 * stream is forwarded to the real agent (HTTPS, HTTP/2) unless a rule says
 * otherwise. Consul itself is never replaced: every answer comes from it, and
 * a fault only holds, cuts or resets it on the way.
 */
import http2, { type ClientHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TlsMaterial } from './tls.js';

export type H2Fault =
  /** Send Consul's headers, then nothing: the body never comes. */
  | 'stall-body'
  /** Send Consul's headers and the first bytes of its body, then reset the stream. */
  | 'cut-body'
  /** Reset the stream before any answer. */
  | 'reset'
  | undefined;

export interface H2Proxy {
  readonly port: number;
  /** Paths (with query) of the streams received. */
  readonly paths: string[];
  /** Paths of the streams received and not closed yet (a stream is listed before `rule` sees it). */
  openStreams(): string[];
  rule: ((path: string) => H2Fault) | undefined;
  /** Sends GOAWAY on every client connection and drops them, streams in flight included. */
  goAway(): void;
  close(): Promise<void>;
}

/** Listens on `host` (the agent's address, which the material's server certificate names). */
export async function startH2Proxy(
  material: TlsMaterial,
  host: string,
  upstreamPort: number,
): Promise<H2Proxy> {
  const cert = material.serverCert(host);
  let upstream: ClientHttp2Session | undefined;
  const upstreamSession = (): ClientHttp2Session => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      upstream = http2.connect(`https://${host}:${upstreamPort}`, { ca: material.caPem });
      upstream.on('error', () => undefined);
    }
    return upstream;
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  const open = new Set<{ readonly path: string }>();
  const server = http2.createSecureServer({ cert: cert.cert, key: cert.key });
  // Every TCP connection too: one still in its TLS handshake has no session yet, and
  // server.close() would wait for it forever.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.once('close', () => sessions.delete(session));
  });
  const proxy: H2Proxy = {
    port: 0,
    paths: [],
    openStreams: () => [...open].map((stream) => stream.path),
    rule: undefined,
    goAway: () => {
      for (const session of sessions) {
        session.goaway(http2.constants.NGHTTP2_NO_ERROR);
        // Not waiting for the streams in flight: a blocking read would hold the connection for its wait.
        session.destroy();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        upstream?.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    const entry = { path };
    open.add(entry);
    stream.once('close', () => open.delete(entry));
    proxy.paths.push(path);
    const fault = proxy.rule?.(path);
    if (fault === 'reset') {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) forwarded[name] = value;
    const request = upstreamSession().request({ ...forwarded, ':method': 'GET', ':path': path });
    request.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.once('close', () => {
      if (!request.closed) request.close(http2.constants.NGHTTP2_CANCEL);
    });
    request.once('response', (answer) => {
      const out: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer)) if (!name.startsWith(':')) out[name] = value;
      if (stream.closed) return;
      stream.respond({ ...out, ':status': Number(answer[':status']) });
      if (fault === 'stall-body') return;
      if (fault === 'cut-body') {
        request.once('data', (chunk: Buffer) => {
          stream.write(chunk.subarray(0, Math.max(1, Math.floor(chunk.length / 2))));
          setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20);
        });
        return;
      }
      request.pipe(stream);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return Object.assign(proxy, { port: (server.address() as AddressInfo).port });
}
