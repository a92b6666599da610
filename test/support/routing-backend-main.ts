/**
 * A backend process for routing tests: an HTTP (and WebSocket) server that campaigns for a
 * Consul key and serves only while it holds it. Started by routing-backends.ts as
 *
 *   node --import tsx test/support/routing-backend-main.ts --addr 127.0.0.1:8500 --key k --name b1 \
 *     [--ttl 10s] [--lock-delay 0s]
 *
 * - listens on 127.0.0.1, port 0; reports `{ type: 'ready', port, name }`;
 * - campaigns the way test/support/contender.ts does: a session (TTL, behavior `release`,
 *   lock-delay) renewed every TTL/2, `PUT ?acquire` with `{"host","port","name"}` as the value;
 *   while not leading it follows the key with a blocking query and tries to acquire as soon as
 *   the key has no `Session` (so a released key is taken within milliseconds);
 * - leads only from a successful acquire until a step-down, or until it sees the key lost;
 *   meanwhile every request gets 421 Misdirected Request;
 * - every response carries `x-session-id` (the session it owns, '' between sessions) and `x-backend`;
 * - routes: `/echo`, `/slow?ms=N`, `/hold`, `/stream?chunks=N&ms=M`, WebSocket `/ws`;
 * - commands over IPC: `stepDown`, `stats`, `close` (replies carry the command's `id`);
 * - SIGKILL is a crash: nothing runs, the session's TTL expires in Consul.
 *
 * Every `at` it reports is epoch milliseconds (`performance.timeOrigin + performance.now()`);
 * the parent turns it into its own `performance.now()` clock.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { acquire, consulClient, createSession, destroySession, release } from './contender.js';
import type { BackendCommand, BackendMessage, WireRequest } from './routing-backends.js';

// ---- options

const { values: args } = parseArgs({
  options: {
    addr: { type: 'string' },
    key: { type: 'string' },
    name: { type: 'string' },
    ttl: { type: 'string', default: '10s' },
    'lock-delay': { type: 'string', default: '0s' },
  },
  strict: true,
});
if (!args.addr || !args.key || !args.name) throw new Error('--addr, --key and --name are required');

function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`expected a duration like 500ms, 10s or 1m, got "${text}"`);
  return Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 's' ? 1_000 : 60_000);
}

const addr = args.addr.replace(/^https?:\/\//, '');
const key = args.key;
const name = args.name;
const ttl = args.ttl;
const lockDelay = args['lock-delay'];
const ttlMs = durationMs(ttl);
durationMs(lockDelay);

/** While the key is vacant and our acquires are refused (a lock-delay), the blocking query says nothing new: retry on a timer. */
const RETRY_MS = 200;
/** The longest WebSocket message accepted (frames and fragments together). */
const MAX_MESSAGE = 1 << 20;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const consul = consulClient(addr);
const kvUrl = `http://${addr}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
const epochNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- reporting to the parent

function send(message: BackendMessage): void {
  // Run by hand (no IPC channel), the messages go to stdout.
  if (!process.send) {
    console.log(JSON.stringify(message));
    return;
  }
  if (process.connected) process.send(message, undefined, {}, () => undefined);
}

function reply(command: BackendCommand, message: BackendMessage): void {
  send(command.id === undefined ? message : { ...message, id: command.id });
}

// ---- the campaign

type Phase = 'campaigning' | 'down' | 'closing';

let phase: Phase = 'campaigning';
/** Bumped whenever a campaign ends: loops and callbacks of an older campaign then do nothing. */
let generation = 0;
/** The session this process owns (created and not yet destroyed): the `x-session-id` stamp. */
let session: string | undefined;
let leader = false;
/** The value written by the winning acquire (written again on release, as contender.ts does). */
let heldValue = '';
/** The acquire being sent, if any: an ending campaign waits for it, as it may still win. */
let acquireInFlight: Promise<boolean> | undefined;
/** The key had no `Session` in the last answer of the blocking query. */
let keyVacant = false;
let follow: AbortController | undefined;
let renewTimer: NodeJS.Timeout | undefined;
let retryTimer: NodeJS.Timeout | undefined;
let rejoinTimer: NodeJS.Timeout | undefined;
let port = 0;

const descriptor = (): string => JSON.stringify({ host: '127.0.0.1', port, name });

async function newSession(gen: number): Promise<string | undefined> {
  while (gen === generation) {
    try {
      return await createSession(consul, { name: `${name} (${key})`, ttl, behavior: 'release', lockDelay });
    } catch {
      await sleep(RETRY_MS);
    }
  }
  return undefined;
}

async function campaign(): Promise<void> {
  const gen = generation;
  const created = await newSession(gen);
  if (!created) return;
  if (gen !== generation) {
    await destroySession(consul, created).catch(() => undefined);
    return;
  }
  session = created;
  leader = false;
  keyVacant = false;
  renewTimer = setInterval(() => void renew(gen, created), ttlMs / 2);
  retryTimer = setInterval(() => {
    if (keyVacant) void tryAcquire(gen);
  }, RETRY_MS);
  const controller = new AbortController();
  follow = controller;
  void followKey(gen, controller.signal);
}

/** The key's holder, from a blocking query of our own (GET ?index=N): each answer goes to `onKey`. */
async function followKey(gen: number, signal: AbortSignal): Promise<void> {
  let index = 0n;
  while (gen === generation && !signal.aborted) {
    try {
      // Never block on index 0: the first read, and the first after a failure, answer at once.
      const res = await fetch(index > 0n ? `${kvUrl}?index=${index}&wait=30s` : kvUrl, { signal });
      const next = BigInt(res.headers.get('x-consul-index') ?? '0');
      let holder: string | undefined;
      if (res.status === 200) {
        const entries = (await res.json()) as Array<{ Session?: string }>;
        holder = entries[0]?.Session;
      } else {
        await res.body?.cancel();
        if (res.status !== 404) throw new Error(`GET ${kvUrl}: ${res.status}`);
      }
      // An index that goes backwards (a restarted agent) starts over from a non-blocking read.
      index = next < index ? 0n : next;
      onKey(gen, holder);
    } catch {
      if (signal.aborted || gen !== generation) return;
      index = 0n;
      await sleep(RETRY_MS);
    }
  }
}

function onKey(gen: number, holder: string | undefined): void {
  if (gen !== generation) return;
  keyVacant = !holder;
  if (!holder) {
    if (leader) {
      // Released, and not by us: our session was most likely invalidated; a renew tells.
      loseLeadership('the key was released');
      void renew(gen, session);
    }
    void tryAcquire(gen);
  } else if (holder !== session && leader) {
    loseLeadership(`session ${holder} holds the key`);
  }
}

function loseLeadership(why: string): void {
  if (!leader) return;
  leader = false;
  send({ type: 'lost', sessionId: session ?? '', why, at: epochNow() });
}

async function tryAcquire(gen: number): Promise<void> {
  const mine = session;
  if (acquireInFlight || leader || !mine || gen !== generation || phase !== 'campaigning') return;
  const value = descriptor();
  const attempt = acquire(consul, key, mine, value).catch(() => false);
  acquireInFlight = attempt;
  const won = await attempt;
  acquireInFlight = undefined;
  // Kept even when the campaign ended meanwhile: endCampaign then releases with it.
  if (won) heldValue = value;
  if (!won || gen !== generation || phase !== 'campaigning') return;
  leader = true;
  keyVacant = false;
  send({ type: 'leader', sessionId: mine, at: epochNow() });
}

async function renew(gen: number, mine: string | undefined): Promise<void> {
  if (!mine) return;
  // Plain fetch, so a 404 (the session is gone: expired or destroyed behind our back) is plain to see.
  const res = await fetch(`http://${addr}/v1/session/renew/${mine}`, { method: 'PUT' }).catch(
    () => undefined,
  );
  await res?.body?.cancel();
  if (res?.status !== 404 || gen !== generation || phase !== 'campaigning') return;
  loseLeadership(`session ${mine} no longer exists`);
  await endCampaign(false);
  if (phase === 'campaigning') void campaign();
}

/** Stops the current campaign: not leader at once; then releases the key (if held and asked), destroys the session. */
async function endCampaign(releaseKey: boolean): Promise<{ sessionId: string | null; released: boolean }> {
  generation += 1;
  clearInterval(renewTimer);
  clearInterval(retryTimer);
  follow?.abort();
  follow = undefined;
  const wasLeader = leader;
  leader = false;
  keyVacant = false;
  const mine = session;
  if (!mine) return { sessionId: null, released: false };
  // An acquire sent just before may still win: release that too, else destroying the session
  // would leave the key held for the lock-delay.
  const lateWin = (await acquireInFlight) === true;
  let released = false;
  if (releaseKey && (wasLeader || lateWin)) {
    released = await release(consul, key, mine, heldValue).catch(() => false);
  }
  await destroySession(consul, mine).catch(() => undefined);
  if (session === mine) session = undefined;
  return { sessionId: mine, released };
}

// ---- the server

const sockets = new Set<Socket>();
const upgraded = new Set<Duplex>();
const requests: WireRequest[] = [];
let holdArrived = 0;
let holdClosed = 0;
let wsMessages = 0;

const server = http.createServer();

server.on('connection', (socket: Socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  // A client gone mid-request must never crash the backend.
  socket.on('error', () => undefined);
});

server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
  if (error.code !== 'ECONNRESET' && socket.writable) {
    socket.end(rawResponse(400, 'Bad Request', session ?? '', 'bad request\n'));
  }
  socket.destroy();
});

function stamp(res: http.ServerResponse, sessionId: string): void {
  res.setHeader('x-session-id', sessionId);
  res.setHeader('x-backend', name);
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
    req.on('close', () => resolve(undefined));
  });
}

function echo(req: http.IncomingMessage, res: http.ServerResponse, body: string, sessionId: string): void {
  if (res.destroyed || res.writableEnded) return;
  const json = JSON.stringify({
    method: req.method,
    url: req.url,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body,
    sessionId,
    name,
  });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(json);
}

/** Records a request as it arrives, with the stamps (and whether we lead) of that moment. */
function arrived(req: http.IncomingMessage, upgrade: boolean): { sessionId: string; leading: boolean } {
  const sessionId = session ?? '';
  const leading = leader;
  requests.push({
    method: req.method ?? '',
    url: req.url ?? '',
    sessionId,
    leader: leading,
    upgrade,
    at: epochNow(),
  });
  return { sessionId, leading };
}

server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
  // The stamps, and whether we lead, as when the request arrived: an answer that takes time
  // (/slow, /stream) still shows which leadership accepted it.
  const { sessionId, leading } = arrived(req, false);
  req.on('error', () => undefined);
  res.on('error', () => undefined);
  stamp(res, sessionId);
  if (!leading) {
    req.resume();
    res.writeHead(421, { 'content-type': 'text/plain' });
    res.end(`${name} is not the leader\n`);
    return;
  }
  const url = new URL(req.url ?? '/', 'http://backend');
  switch (url.pathname) {
    case '/echo':
      void readBody(req).then((body) => body !== undefined && echo(req, res, body, sessionId));
      return;
    case '/slow': {
      const ms = Number(url.searchParams.get('ms') ?? 0);
      const waited = sleep(Number.isFinite(ms) ? ms : 0);
      void readBody(req).then(async (body) => {
        await waited;
        if (body !== undefined) echo(req, res, body, sessionId);
      });
      return;
    }
    case '/hold': {
      holdArrived += 1;
      send({ type: 'holdArrived', url: req.url ?? '', at: epochNow() });
      req.resume();
      // Never answered: 'close' before the response finished is the client's side going away.
      res.on('close', () => {
        if (res.writableFinished) return;
        holdClosed += 1;
        send({ type: 'holdClosed', url: req.url ?? '', at: epochNow() });
      });
      return;
    }
    case '/stream': {
      const chunks = Number(url.searchParams.get('chunks') ?? 5);
      const ms = Number(url.searchParams.get('ms') ?? 100);
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      let sent = 0;
      const write = (): void => {
        if (res.destroyed) return;
        if (sent >= chunks) {
          res.end();
          return;
        }
        res.write(`chunk ${sent}\n`);
        sent += 1;
        timer = setTimeout(write, ms);
      };
      let timer = setTimeout(write, 0);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    default:
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
  }
});

function rawResponse(status: number, reason: string, sessionId: string, body: string): string {
  return [
    `HTTP/1.1 ${status} ${reason}`,
    `x-session-id: ${sessionId}`,
    `x-backend: ${name}`,
    'connection: close',
    'content-type: text/plain',
    `content-length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** Answers an upgrade with a plain HTTP response and closes the connection. */
function refuseUpgrade(
  socket: Duplex,
  status: number,
  reason: string,
  sessionId: string,
  body: string,
): void {
  socket.end(rawResponse(status, reason, sessionId, body), () => socket.destroy());
}

server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
  socket.on('error', () => undefined);
  const { sessionId, leading } = arrived(req, true);
  if (!leading)
    return refuseUpgrade(socket, 421, 'Misdirected Request', sessionId, `${name} is not the leader\n`);
  const path = new URL(req.url ?? '/', 'http://backend').pathname;
  if (path !== '/ws' || String(req.headers.upgrade).toLowerCase() !== 'websocket') {
    return refuseUpgrade(socket, 404, 'Not Found', sessionId, 'not found\n');
  }
  const wsKey = req.headers['sec-websocket-key'];
  if (typeof wsKey !== 'string' || !wsKey)
    return refuseUpgrade(socket, 400, 'Bad Request', sessionId, 'no key\n');
  const accept = createHash('sha1')
    .update(wsKey + WS_GUID)
    .digest('base64');
  socket.write(
    [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${accept}`,
      `x-session-id: ${sessionId}`,
      `x-backend: ${name}`,
      '',
      '',
    ].join('\r\n'),
  );
  upgraded.add(socket);
  socket.on('close', () => upgraded.delete(socket));
  serveWebSocket(socket, head);
});

// ---- a minimal RFC 6455 server side

interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
  /** Bytes the frame took in the buffer. */
  readonly size: number;
}

/** One frame from the start of `buf`; 'more' when incomplete; a close code when the frame is bad. */
function parseFrame(buf: Buffer): Frame | 'more' | number {
  if (buf.length < 2) return 'more';
  const b0 = buf.readUInt8(0);
  const b1 = buf.readUInt8(1);
  const opcode = b0 & 0x0f;
  if (b0 & 0x70) return 1002; // no extension was negotiated
  if (!(b1 & 0x80)) return 1002; // a client's frames are masked
  let length = b1 & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return 'more';
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return 'more';
    if (buf.readUInt32BE(2) !== 0) return 1009;
    length = buf.readUInt32BE(6);
    offset = 10;
  }
  if (length > MAX_MESSAGE) return 1009;
  if (opcode >= 0x8 && (!(b0 & 0x80) || length > 125)) return 1002;
  if (buf.length < offset + 4 + length) return 'more';
  const mask = buf.subarray(offset, offset + 4);
  const payload = Buffer.from(buf.subarray(offset + 4, offset + 4 + length));
  for (let i = 0; i < payload.length; i += 1) payload[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
  return { fin: (b0 & 0x80) !== 0, opcode, payload, size: offset + 4 + length };
}

/** A server frame (never masked, never fragmented). */
function frame(opcode: number, payload: Buffer): Buffer {
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, payload.length]);
  } else if (payload.length < 65_536) {
    header = Buffer.alloc(4);
    header.writeUInt8(0x80 | opcode, 0);
    header.writeUInt8(126, 1);
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header.writeUInt8(0x80 | opcode, 0);
    header.writeUInt8(127, 1);
    header.writeUInt32BE(0, 2);
    header.writeUInt32BE(payload.length, 6);
  }
  return Buffer.concat([header, payload]);
}

function closePayload(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code, 0);
  return payload;
}

function serveWebSocket(socket: Duplex, head: Buffer): void {
  let buffered: Buffer = Buffer.alloc(0);
  let fragments: Buffer[] = [];
  let fragmentOpcode = 0;
  let closing = false;

  const close = (payload: Buffer): void => {
    if (closing) return;
    closing = true;
    socket.end(frame(0x8, payload), () => socket.destroy());
  };

  const message = (opcode: number, payload: Buffer): void => {
    wsMessages += 1;
    if (opcode === 0x1) socket.write(frame(0x1, Buffer.from(`${name}:${payload.toString('utf8')}`)));
    else socket.write(frame(0x2, payload));
  };

  const onFrame = (f: Frame): void => {
    switch (f.opcode) {
      case 0x0: // continuation
        if (fragmentOpcode === 0) return close(closePayload(1002));
        fragments.push(f.payload);
        if (fragments.reduce((sum, part) => sum + part.length, 0) > MAX_MESSAGE)
          return close(closePayload(1009));
        if (f.fin) {
          message(fragmentOpcode, Buffer.concat(fragments));
          fragments = [];
          fragmentOpcode = 0;
        }
        return;
      case 0x1:
      case 0x2:
        if (fragmentOpcode !== 0) return close(closePayload(1002));
        if (f.fin) return message(f.opcode, f.payload);
        fragmentOpcode = f.opcode;
        fragments = [f.payload];
        return;
      case 0x8: // close: answer with the same code
        return close(f.payload.subarray(0, 2));
      case 0x9: // ping
        socket.write(frame(0xa, f.payload));
        return;
      case 0xa: // pong
        return;
      default:
        return close(closePayload(1002));
    }
  };

  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (!closing) {
      const parsed = parseFrame(buffered);
      if (parsed === 'more') return;
      if (typeof parsed === 'number') return close(closePayload(parsed));
      buffered = buffered.subarray(parsed.size);
      onFrame(parsed);
    }
  };

  socket.on('data', onData);
  // The http server's sockets allow half-open: a client gone without a close frame is closed here.
  socket.on('end', () => socket.destroy());
  if (head.length > 0) onData(head);
}

// ---- commands from the parent

function stats(): Extract<BackendMessage, { type: 'stats' }> {
  return {
    type: 'stats',
    name,
    port,
    leader,
    sessionId: session ?? null,
    openConnections: sockets.size,
    openWebSockets: upgraded.size,
    requests: requests.slice(),
    holdArrived,
    holdClosed,
    wsMessages,
  };
}

async function stepDown(command: Extract<BackendCommand, { type: 'stepDown' }>): Promise<void> {
  if (phase !== 'campaigning') {
    reply(command, { type: 'steppedDown', sessionId: null, released: false, at: epochNow() });
    return;
  }
  phase = 'down';
  const ended = await endCampaign(true);
  reply(command, {
    type: 'steppedDown',
    sessionId: ended.sessionId,
    released: ended.released,
    at: epochNow(),
  });
  rejoinTimer = setTimeout(() => {
    if (phase !== 'down') return;
    phase = 'campaigning';
    void campaign();
  }, command.rejoinAfterMs ?? 1_000);
}

async function shutdown(command?: BackendCommand): Promise<void> {
  if (phase === 'closing') return;
  phase = 'closing';
  clearTimeout(rejoinTimer);
  // Never hang on an unreachable agent: the TTL cleans up after us anyway.
  setTimeout(() => process.exit(1), 5_000).unref();
  await endCampaign(true);
  consul.destroy();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });
  if (command && process.send && process.connected) {
    const message: BackendMessage = {
      type: 'closed',
      ...(command.id === undefined ? {} : { id: command.id }),
    };
    process.send(message, undefined, {}, () => process.exit(0));
  } else {
    process.exit(0);
  }
}

process.on('message', (raw: unknown) => {
  const command = raw as BackendCommand;
  switch (command.type) {
    case 'stepDown':
      void stepDown(command);
      return;
    case 'stats':
      reply(command, stats());
      return;
    case 'close':
      void shutdown(command);
      return;
  }
});

// The parent gone (crashed, or killed without close()): leave nothing behind.
process.on('disconnect', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

server.listen(0, '127.0.0.1', () => {
  port = (server.address() as AddressInfo).port;
  send({ type: 'ready', port, name });
  void campaign();
});
