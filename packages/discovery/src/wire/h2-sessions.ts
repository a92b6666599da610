/**
 * HTTP/2 to one agent (opt-in, `http2: true`; Consul offers it over TLS only):
 * every request of a discovery is a stream on a shared connection, so any
 * number of blocking queries hold one connection to Consul (one per
 * `maxConcurrentStreams` of them: a stream beyond the agent's limit would wait
 * for another to end, and a blocking query may not end for minutes).
 */
import http2, { type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { DEFAULT_STREAM_LIMIT } from '../config/defaults.js';

interface Connection {
  readonly session: ClientHttp2Session;
  active: number;
}

/** A stream's place on a connection: `release()` once the stream is over (once). */
export interface StreamSlot {
  readonly session: ClientHttp2Session;
  release(): void;
}

export class H2Sessions {
  readonly #connections = new Set<Connection>();

  constructor(
    readonly origin: string,
    readonly options: SecureClientSessionOptions,
  ) {}

  /** A connection with room for one more stream, opened when none has. */
  acquire(): StreamSlot {
    let connection: Connection | undefined;
    for (const open of this.#connections) {
      // Closing or lost, its event not handled yet: a request on it would throw.
      if (open.session.closed || open.session.destroyed) {
        this.#connections.delete(open);
        continue;
      }
      if (open.active < this.#limitOf(open.session)) {
        connection = open;
        break;
      }
    }
    if (!connection) connection = this.#open();
    const used = connection;
    // Like a keep-alive socket: it keeps the process alive while a request is on it, not while idle.
    if ((used.active += 1) === 1) used.session.ref();
    let released = false;
    return {
      session: used.session,
      release: () => {
        if (released) return;
        released = true;
        if ((used.active -= 1) === 0 && !used.session.destroyed) used.session.unref();
      },
    };
  }

  /** Closes every connection at once (their streams end with an error). */
  close(): void {
    for (const { session } of this.#connections) session.destroy();
    this.#connections.clear();
  }

  #limitOf(session: ClientHttp2Session): number {
    return Math.min(
      session.remoteSettings.maxConcurrentStreams ?? DEFAULT_STREAM_LIMIT,
      DEFAULT_STREAM_LIMIT,
    );
  }

  #open(): Connection {
    const session = http2.connect(this.origin, this.options);
    const connection: Connection = { session, active: 0 };
    // Its streams report the failure; the connection is only forgotten, and the next request opens another.
    session.on('error', () => undefined);
    session.once('close', () => this.#connections.delete(connection));
    session.once('goaway', () => this.#connections.delete(connection));
    session.unref();
    this.#connections.add(connection);
    return connection;
  }
}
