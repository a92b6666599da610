/**
 * A backend HTTP server in the test's own process that can hold a Consul lock key, for
 * tests of routing that need to script exactly what a leader does with a request:
 * answer it, answer 421 (not the leader), break the connection, or not listen at all.
 * Every answer is stamped with the backend's session (`x-session-id`) and name.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type Consul from 'consul';
import { acquire, createSession, destroySession, release } from './contender.js';

/** What the backend does with the next requests. */
export type Behaviour = 'answer' | 'not-leader' | 'reset';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly sessionId: string | undefined;
}

export class LocalBackend {
  behaviour: Behaviour = 'answer';
  sessionId: string | undefined;
  readonly received: Received[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  constructor(
    readonly name: string,
    private readonly consul: Consul,
  ) {
    this.server = http.createServer((req, res) => this.serve(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get descriptor(): { host: string; port: number; name: string } {
    return { host: '127.0.0.1', port: this.port, name: this.name };
  }

  /** The last request it received. */
  lastReceived(): Received {
    const received = this.received.at(-1);
    if (!received) throw new Error(`${this.name} received nothing`);
    return received;
  }

  /** Connections open to it now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** Creates a session and takes the key; the previous holder must have let go. */
  async lead(key: string, ttl?: string): Promise<string> {
    this.sessionId = await createSession(this.consul, { name: this.name, ...(ttl ? { ttl } : {}) });
    this.behaviour = 'answer';
    if (!(await acquire(this.consul, key, this.sessionId, JSON.stringify(this.descriptor)))) {
      throw new Error(`${this.name} could not take ${key}`);
    }
    return this.sessionId;
  }

  /** A planned step-down: answers 421 from now on, then releases the key and ends its session. */
  async stepDown(key: string): Promise<void> {
    const session = this.sessionId;
    this.behaviour = 'not-leader';
    if (!session) return;
    await release(this.consul, key, session);
    await destroySession(this.consul, session);
  }

  /** Stops listening (connections refused) and ends every connection, keeping the key. */
  async stopListening(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Requests to `/hold` (never answered) whose client side closed before an answer. */
  holdsClosed = 0;

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const stamps = { 'x-session-id': this.sessionId ?? '', 'x-backend': this.name };
    if (this.behaviour === 'answer' && req.url === '/hold') {
      this.received.push({
        method: req.method ?? '',
        url: '/hold',
        headers: req.headers,
        body: '',
        sessionId: this.sessionId,
      });
      res.on('close', () => {
        if (!res.writableFinished) this.holdsClosed += 1;
      });
      return;
    }
    if (this.behaviour === 'answer' && req.url === '/stream') {
      // Three chunks 50 ms apart: a proxy that buffers would show them all at once.
      res.writeHead(200, { ...stamps, 'content-type': 'text/plain' });
      let sent = 0;
      const timer = setInterval(() => {
        sent += 1;
        res.write(`chunk-${sent}\n`);
        if (sent === 3) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      this.received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        sessionId: this.sessionId,
      });
      if (this.behaviour === 'reset') {
        req.socket.destroy();
        return;
      }
      if (this.behaviour === 'not-leader') {
        res.writeHead(421, stamps).end('not the leader');
        return;
      }
      const text = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
        name: this.name,
      });
      res.writeHead(200, { ...stamps, 'content-type': 'application/json' }).end(text);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A backend listening on a free port, closed by `defer` (the running test's teardowns). */
export async function startLocalBackend(
  name: string,
  consul: Consul,
  defer: (cleanup: () => unknown) => void,
): Promise<LocalBackend> {
  const backend = await new LocalBackend(name, consul).listen();
  defer(() => backend.close());
  return backend;
}
