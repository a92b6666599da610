import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BehaviorSubject, EMPTY, Subject, type Observable } from 'rxjs';
import type { ConsulReadMeta, VacantReason } from '@consul-leader/types';
import type { LeaderState, PrefixState } from '../discovery.js';
import { ConsulUnreachableError, InvalidOptionError } from '../errors.js';
import { type LeaderEventStream, type ServeLeaderEventsOptions, serveLeaderEvents } from './serve.js';

const consul: ConsulReadMeta = { index: 5n, lastContactMs: 0, knownLeader: true };
const vacant = (key: string, reason: VacantReason = 'key-missing'): LeaderState<unknown> => ({
  status: 'vacant',
  key,
  reason,
  consul,
});
const prefixState = (
  states: LeaderState<unknown>[],
  unreachable: PrefixState<unknown>['unreachable'] = null,
): PrefixState<unknown> => ({
  prefix: 'p/',
  states: new Map(states.map((s) => [s.key, s])),
  unreachable,
  consul,
});

interface Frame {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
  readonly retry?: string;
}

/** A client: the raw frames of the stream as they arrive. */
interface Client {
  readonly response: Response;
  readonly frames: Frame[];
  waitFor(predicate: (frames: Frame[]) => boolean, timeoutMs?: number): Promise<void>;
  abort(): void;
}

async function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal, headers });
  const frames: Frame[] = [];
  let buffer = '';
  if (!response.body) throw new Error('no body');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(': ')) frame.comment = line.slice(2);
            else {
              const colon = line.indexOf(': ');
              const field = line.slice(0, colon);
              frame[field] =
                frame[field] === undefined
                  ? line.slice(colon + 2)
                  : `${frame[field]}\n${line.slice(colon + 2)}`;
            }
          }
          frames.push(frame);
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    response,
    frames,
    async waitFor(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(frames)) {
        if (Date.now() > deadline) throw new Error(`not seen in ${timeoutMs} ms: ${JSON.stringify(frames)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    abort: () => controller.abort(),
  };
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

async function serve(
  source: Observable<PrefixState<unknown>>,
  options?: ServeLeaderEventsOptions,
): Promise<{ url: string; streams: LeaderEventStream[] }> {
  const streams: LeaderEventStream[] = [];
  const server = http.createServer((req, res) => streams.push(serveLeaderEvents(req, res, source, options)));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`, streams };
}

function at<T>(list: readonly T[], index: number): T {
  const value = list[index];
  if (value === undefined) throw new Error(`no item ${index} in ${JSON.stringify(list)}`);
  return value;
}
const dataOf = (frame: Frame): unknown => JSON.parse(frame.data ?? 'null');

const events = (frames: Frame[]): Frame[] => frames.filter((f) => f.event !== undefined);

describe('serveLeaderEvents', () => {
  it('sends the headers, a snapshot, then state, removed and consul events with increasing ids', async () => {
    const a = vacant('p/a');
    const b = vacant('p/b');
    const source = new BehaviorSubject(prefixState([a, b]));
    const { url } = await serve(source, { headers: { 'access-control-allow-origin': '*' } });
    const client = await connect(url);
    expect(client.response.status).toBe(200);
    expect(client.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(client.response.headers.get('cache-control')).toBe('no-cache');
    expect(client.response.headers.get('connection')).toBe('keep-alive');
    expect(client.response.headers.get('access-control-allow-origin')).toBe('*');

    await client.waitFor((f) => events(f).length === 1);
    const snapshot = at(events(client.frames), 0);
    expect(snapshot.event).toBe('snapshot');
    expect(dataOf(snapshot)).toEqual({
      prefix: 'p/',
      states: [
        {
          status: 'vacant',
          key: 'p/a',
          reason: 'key-missing',
          consul: { index: '5', lastContactMs: 0, knownLeader: true },
        },
        {
          status: 'vacant',
          key: 'p/b',
          reason: 'key-missing',
          consul: { index: '5', lastContactMs: 0, knownLeader: true },
        },
      ],
      unreachable: null,
    });

    const a2 = vacant('p/a', 'no-session');
    source.next(prefixState([a2, b])); // b unchanged: no event for it
    source.next(prefixState([a2]));
    const error = new ConsulUnreachableError('refused', 'connect ECONNREFUSED');
    source.next(prefixState([], { error, attempt: 1, retryInMs: 250 }));
    source.next(prefixState([], { error, attempt: 2, retryInMs: 500 })); // the next retry
    source.next(prefixState([a2]));
    await client.waitFor((f) => events(f).length === 8);
    const seen = events(client.frames);
    expect(seen.map((f) => f.event)).toEqual([
      'snapshot',
      'state',
      'removed',
      'consul',
      'removed',
      'consul',
      'consul',
      'state',
    ]);
    expect(seen.map((f) => Number(f.id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(dataOf(at(seen, 1))).toMatchObject({ key: 'p/a', reason: 'no-session' });
    expect(dataOf(at(seen, 2))).toEqual({ key: 'p/b' });
    expect(dataOf(at(seen, 3))).toEqual({
      unreachable: {
        code: 'CONSUL_UNREACHABLE',
        message: 'connect ECONNREFUSED',
        attempt: 1,
        retryInMs: 250,
      },
    });
    expect(dataOf(at(seen, 5))).toMatchObject({ unreachable: { attempt: 2, retryInMs: 500 } });
    expect(dataOf(at(seen, 6))).toEqual({ unreachable: null });
    client.abort();
  });

  it('unsubscribes when the client disconnects', async () => {
    const source = new Subject<PrefixState<unknown>>();
    const { url, streams } = await serve(source);
    const client = await connect(url);
    source.next(prefixState([vacant('p/a')]));
    await client.waitFor((f) => events(f).length === 1);
    expect(source.observed).toBe(true);
    client.abort();
    await at(streams, 0).closed;
    expect(source.observed).toBe(false);
  });

  it('ends the response when the stream completes, and close() ends it too', async () => {
    const { url } = await serve(EMPTY);
    const response = await fetch(url);
    expect(await response.text()).toBe(': leader events\n\n');

    const source = new Subject<PrefixState<unknown>>();
    const second = await serve(source, { retryMs: 1500 });
    const client = await connect(second.url);
    await client.waitFor((f) => f.length === 1);
    expect(at(client.frames, 0)).toEqual({ retry: '1500' });
    at(second.streams, 0).close();
    await at(second.streams, 0).closed;
    expect(source.observed).toBe(false);
  });

  it('sends a comment heartbeat at the configured interval', async () => {
    const source = new BehaviorSubject(prefixState([]));
    const { url } = await serve(source, { heartbeatMs: 50 });
    const client = await connect(url);
    await client.waitFor((f) => f.filter((x) => x.comment === 'heartbeat').length >= 3);
    expect(events(client.frames)).toHaveLength(1);
    client.abort();
  });

  it('continues ids after a reconnecting client Last-Event-ID', async () => {
    const source = new BehaviorSubject(prefixState([vacant('p/a')]));
    const { url } = await serve(source);
    const client = await connect(url, { 'last-event-id': '41' });
    await client.waitFor((f) => events(f).length === 1);
    expect(events(client.frames)[0]).toMatchObject({ id: '42', event: 'snapshot' });
    client.abort();
  });

  it('sends a slow client the latest state, not every one in between, and buffers little meanwhile', async () => {
    const source = new Subject<PrefixState<unknown>>();
    const responses: http.ServerResponse[] = [];
    const server = http.createServer((req, res) => {
      responses.push(res);
      serveLeaderEvents(req, res, source, { heartbeatMs: 0 });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // HTTP/1.0: the body is the event stream itself, without chunk headers.
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.write('GET /events HTTP/1.0\r\n\r\n');
    socket.pause();
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 5_000;
      const check = (): void => {
        if (source.observed) resolve();
        else if (Date.now() > deadline) reject(new Error('no subscriber'));
        else setTimeout(check, 5);
      };
      check();
    });

    // About 4 KB per event: 10,000 changes would be 40 MB if every one were queued.
    const key = `p/${'k'.repeat(4_000)}`;
    const CHANGES = 10_000;
    for (let i = 0; i < CHANGES; i += 1)
      source.next(prefixState([vacant(key, i % 2 ? 'no-session' : 'key-missing')]));
    source.next(prefixState([vacant(key, 'session-gone')]));
    expect(at(responses, 0).writableLength).toBeLessThan(1_000_000);

    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.resume();
    const deadline = Date.now() + 10_000;
    while (!text.includes('"session-gone"')) {
      if (Date.now() > deadline) throw new Error('the last state never came');
      await new Promise((r) => setTimeout(r, 10));
    }
    const frames = text
      .slice(text.indexOf('\r\n\r\n') + 4)
      .split('\n\n')
      .filter((block) => block.includes('event: '));
    const last = frames.at(-1) ?? '';
    expect(last).toContain('event: state');
    expect(last).toContain('"session-gone"');
    expect(frames.length).toBeLessThan(CHANGES);
    const ids = frames.map((block) => Number(/^id: (\d+)$/m.exec(block)?.[1]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    socket.destroy();
  });

  it('refuses a bad heartbeat', () => {
    const req = new http.IncomingMessage(null as never);
    expect(() => serveLeaderEvents(req, null as never, EMPTY, { heartbeatMs: -1 })).toThrow(
      InvalidOptionError,
    );
  });
});
