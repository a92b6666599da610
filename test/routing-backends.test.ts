/**
 * The harness of test/support/routing-backends.ts against a real Consul dev agent: three
 * backend processes campaign for one key; exactly one serves, the others answer 421; a
 * step-down hands the key on; /slow, /stream, /hold and the WebSocket echo work; connections
 * are counted down to 0; a killed backend's process is gone.
 */
import { type Socket, connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, WebSocket, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { delay } from './support/recorder.js';
import {
  type Backend,
  type Backends,
  type BackendStats,
  type Holders,
  followHolders,
  keyHolder,
  startBackends,
} from './support/routing-backends.js';

interface Echo {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  readonly sessionId: string;
  readonly name: string;
}

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let agent: ConsulAgent;
let set: Backends | undefined;
let holders: Holders | undefined;
const client = new Agent();
const key = `routing/t-${Date.now()}/leader`;

beforeAll(async () => {
  agent = await startConsulAgent();
  holders = followHolders(agent.address, key);
  set = await startBackends({ consulAddress: agent.address, key });
});

afterAll(async () => {
  holders?.stop();
  await client.destroy();
  await set?.close();
  // close() leaves no process behind, and those not killed exited cleanly.
  for (const backend of set?.backends ?? []) {
    expect(alive(backend.pid)).toBe(false);
    const exit = await backend.exited();
    if (exit.signal !== 'SIGKILL') expect(exit.code).toBe(0);
  }
  await agent?.destroy();
});

const backends = (): Backend[] => set?.backends ?? [];
const leader = (timeoutMs?: number): Promise<Backend> => {
  if (!set) throw new Error('no backends');
  return set.leader(timeoutMs);
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls every backend's stats until `check` holds for all of them. */
async function untilStats(what: string, check: (stats: BackendStats) => boolean, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(backends().map((b) => b.stats()));
    if (all.every(check)) return all;
    if (performance.now() > deadline)
      throw new Error(`not reached in ${timeoutMs} ms: ${what}: ${JSON.stringify(all)}`);
    await delay(50);
  }
}

/** A WebSocket handshake by hand, to read the status and headers of the answer (undici's WebSocket shows neither). */
async function rawUpgrade(port: number): Promise<{ status: number; headers: Map<string, string> }> {
  const { status, headers, socket } = await handshake(port);
  socket.destroy();
  return { status, headers };
}

function handshake(port: number): Promise<{ status: number; headers: Map<string, string>; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    const onData = (chunk: string): void => {
      text += chunk;
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers = new Map(
        lines.map((line) => [
          line.slice(0, line.indexOf(':')).toLowerCase(),
          line.slice(line.indexOf(':') + 1).trim(),
        ]),
      );
      resolve({ status: Number(statusLine.split(' ')[1]), headers, socket });
    };
    socket.on('data', onData);
    socket.write(
      [
        'GET /ws HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
  });
}

/** Everything the server sends until it closes the connection. */
function readToEnd(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => chunks.push(Buffer.from(chunk, 'latin1')));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('routing backends', () => {
  it('elects exactly one leader, whose session holds the key; the others answer 421 with their stamps', async () => {
    const elected = await leader();
    const res = await request(`${elected.origin}/echo?x=1`, {
      method: 'POST',
      body: 'hi',
      dispatcher: client,
    });
    const echo = (await res.body.json()) as Echo;
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-backend']).toBe(elected.name);
    expect(res.headers['x-session-id']).toBe(await keyHolder(agent.address, key));
    expect(echo).toMatchObject({ method: 'POST', url: '/echo?x=1', body: 'hi', name: elected.name });
    expect(echo.sessionId).toBe(res.headers['x-session-id']);

    // Every backend has its session by now (they created one before campaigning).
    const stats = await untilStats('a session each', (s) => s.sessionId !== null);
    expect(stats.filter((s) => s.leader).map((s) => s.name)).toEqual([elected.name]);
    for (const other of backends().filter((b) => b !== elected)) {
      const refused = await request(`${other.origin}/echo`, { dispatcher: client });
      await refused.body.text();
      expect(refused.statusCode).toBe(421);
      expect(refused.headers['x-backend']).toBe(other.name);
      expect(refused.headers['x-session-id']).toMatch(SESSION_ID);
      expect(refused.headers['x-session-id']).toBe(stats.find((s) => s.name === other.name)?.sessionId);
    }
  });

  it('a step-down hands the key to another backend, seen by followHolders', async () => {
    const old = await leader();
    const held = await keyHolder(agent.address, key);
    await holders?.waitFor((c) => c.session === held);
    const from = holders?.changes.length ?? 0;
    const sentAt = performance.now();
    // Rejoins after the test's checks, so the next leader is one of the others.
    const released = await old.stepDown(5_000);
    expect(released).toBe(held);

    const next = await leader(5_000);
    expect(next).not.toBe(old);
    const change = await holders?.waitFor((c) => c.session !== null && c.session !== released, {
      from,
      timeoutMs: 5_000,
    });
    expect(change?.at).toBeGreaterThan(sentAt);
    expect(next.events.some((e) => e.type === 'leader' && e.sessionId === change?.session)).toBe(true);

    const refused = await request(`${old.origin}/echo`, { dispatcher: client });
    await refused.body.text();
    expect(refused.statusCode).toBe(421);
    const oldStats = await old.stats();
    expect(oldStats.leader).toBe(false);
    expect(oldStats.requests.at(-1)).toMatchObject({ url: '/echo', leader: false });
  });

  it('serves /slow and /stream, and sees a client abort of /hold', async () => {
    const elected = await leader();
    const sent = performance.now();
    const slow = await request(`${elected.origin}/slow?ms=200`, { dispatcher: client });
    expect(((await slow.body.json()) as Echo).url).toBe('/slow?ms=200');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(200);

    const stream = await request(`${elected.origin}/stream?chunks=3&ms=30`, { dispatcher: client });
    expect(await stream.body.text()).toBe('chunk 0\nchunk 1\nchunk 2\n');

    const from = elected.events.length;
    const abort = new AbortController();
    const held = request(`${elected.origin}/hold`, { dispatcher: client, signal: abort.signal }).catch(
      (error: unknown) => error,
    );
    await elected.waitFor((e) => e.type === 'holdArrived', { from, timeoutMs: 5_000 });
    abort.abort();
    expect(await held).toBeInstanceOf(Error);
    await elected.waitFor((e) => e.type === 'holdClosed', { from, timeoutMs: 5_000 });
    expect((await elected.stats()).holdClosed).toBe(1);
  });

  it('echoes WebSocket messages from the leader; a non-leader refuses the upgrade with 421', async () => {
    const elected = await leader();
    const ws = new WebSocket(`ws://127.0.0.1:${elected.port}/ws`, { dispatcher: client });
    const replies: string[] = [];
    ws.addEventListener('message', (event) => replies.push(String(event.data)));
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', reject);
    });
    ws.send('hello');
    ws.send('x'.repeat(70_000)); // a 64-bit length frame
    while (replies.length < 2) await delay(10);
    expect(replies).toEqual([`${elected.name}:hello`, `${elected.name}:${'x'.repeat(70_000)}`]);
    expect((await elected.stats()).openWebSockets).toBe(1);
    const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
    ws.close(1000);
    expect(await closed).toMatchObject({ code: 1000 });

    const accepted = await rawUpgrade(elected.port);
    expect(accepted.status).toBe(101);
    expect(accepted.headers.get('sec-websocket-accept')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(accepted.headers.get('x-session-id')).toBe(await keyHolder(agent.address, key));

    for (const b of backends().filter((other) => other !== elected)) {
      const refused = await rawUpgrade(b.port);
      expect(refused.status).toBe(421);
      expect(refused.headers.get('x-backend')).toBe(b.name);
      expect(refused.headers.get('connection')).toBe('close');
    }
  });

  it('survives an unmasked WebSocket frame and a client gone mid-request', async () => {
    const elected = await leader();
    const { status, socket } = await handshake(elected.port);
    expect(status).toBe(101);
    const answer = readToEnd(socket);
    socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // a text frame without a mask
    // A close frame with code 1002 (protocol error), then the connection closed.
    expect([...(await answer)]).toEqual([0x88, 0x02, 0x03, 0xea]);

    const cut = connect(elected.port, '127.0.0.1');
    cut.on('error', () => undefined);
    cut.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    await delay(50);
    cut.destroy();
    await delay(50);
    const res = await request(`${elected.origin}/echo`, { dispatcher: client });
    expect(((await res.body.json()) as Echo).name).toBe(elected.name);
  });

  it('counts connections down to 0 once the client closes its own', async () => {
    const elected = await leader();
    await (await request(`${elected.origin}/echo`, { dispatcher: client })).body.text();
    expect((await elected.stats()).openConnections).toBeGreaterThan(0);
    await client.close();
    await untilStats('no connection open', (s) => s.openConnections === 0 && s.openWebSockets === 0);
  });

  it('a killed leader is gone, its session left to expire in Consul', async () => {
    const elected = await leader();
    const holder = await keyHolder(agent.address, key);
    elected.kill();
    expect((await elected.exited()).signal).toBe('SIGKILL');
    expect(alive(elected.pid)).toBe(false);
    // Nothing ran on the way out: the key stays held until the TTL invalidates the session.
    expect(await keyHolder(agent.address, key)).toBe(holder);
  });
});
