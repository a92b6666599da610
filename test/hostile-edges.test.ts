/**
 * Hostile input at the SDK's edges (issue #12), against a real Consul agent: values
 * no surface can write, async decoders and schemas, tokens that cannot be a header,
 * keys Consul cannot serve, and many current() calls at once. Each case ended a
 * process, retried forever or printed a warning before.
 */
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import {
  type LeaderDiscovery,
  type LeaderState,
  createLeaderDiscovery,
  isLeaderDiscoveryError,
  serveLeaderEvents,
} from '@consul-leader/discovery';
import { leaderStateSchema } from '@consul-leader/types';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession } from './support/contender.js';
import { delay, record } from './support/recorder.js';

let agent: ConsulAgent;
let consul: Consul;
let discovery: LeaderDiscovery;
let n = 0;
const unique = (): string => `hostile/t${++n}-${Date.now()}`;
const deepArrays = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

// Whatever happens, nothing may reach the process as unhandled, nor as a warning.
const unhandled: unknown[] = [];
const warnings: Error[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
const onWarning = (warning: Error): void => void warnings.push(warning);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  process.on('warning', onWarning);
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
});

afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  process.off('warning', onWarning);
});

const settled = (state: LeaderState<unknown>): boolean => state.status !== 'unreachable';

interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/** A real HTTP client of a `serveLeaderEvents` server: every event's data parsed as JSON. */
function readEvents(url: string): { events: SseEvent[]; response: Promise<IncomingMessage>; close(): void } {
  const events: SseEvent[] = [];
  let buffered = '';
  const request = get(url);
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const lines = frame.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
          if (event) events.push({ event, data: JSON.parse(data.join('\n')) as unknown });
        }
      });
      resolve(res);
    });
    request.on('error', reject);
  });
  return { events, response, close: () => request.destroy() };
}

describe('a value no JSON surface can write (3,000 levels of nesting)', () => {
  let server: Server;
  let url: string;
  const prefix = `${unique()}/`;
  beforeAll(async () => {
    server = createServer((req, res) => void serveLeaderEvents(req, res, discovery.watchPrefix(prefix)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('keeps the SSE server up: the key arrives invalid (unwritable), the others as they are', async () => {
    const State = leaderStateSchema(z.unknown());
    const client = readEvents(url);
    await client.response;
    const session = await createSession(consul, { name: 'deep' });
    expect(await acquire(consul, `${prefix}deep`, session, deepArrays(3000))).toBe(true);
    expect(await acquire(consul, `${prefix}good`, session, '{"host":"db-1"}')).toBe(true);
    const stateOf = (key: string) =>
      client.events
        .filter((e) => e.event === 'state')
        .map((e) => State.parse(e.data))
        .find((s) => s.key === key && s.status !== 'vacant');
    for (let i = 0; i < 200 && !(stateOf(`${prefix}deep`) && stateOf(`${prefix}good`)); i += 1)
      await delay(25);
    expect(stateOf(`${prefix}deep`)).toMatchObject({
      status: 'invalid',
      error: { code: 'INVALID_DESCRIPTOR' },
      issues: [{ code: 'unwritable' }],
      raw: expect.stringMatching(/^\[{100}/),
    });
    expect(stateOf(`${prefix}good`)).toMatchObject({ status: 'leader', leader: { node: { host: 'db-1' } } });

    // A client that connects now gets both in its snapshot.
    const late = readEvents(url);
    await late.response;
    for (let i = 0; i < 100 && late.events.length === 0; i += 1) await delay(20);
    const snapshot = late.events[0]?.data as { states: unknown[] };
    expect(snapshot.states.map((s) => State.parse(s)).map((s) => s.status)).toEqual(['invalid', 'leader']);
    client.close();
    late.close();
    // The stream of the SDK itself still has the descriptor: only the JSON surface replaced it.
    const rec = record(discovery.watch(`${prefix}deep`));
    const state = await rec.next(settled);
    rec.unsubscribe();
    expect(state.status).toBe('leader');
    expect(unhandled).toEqual([]);
  });
});

describe('decode and schemas must be synchronous', () => {
  it('an async decode gives invalid, saying so, and its rejection is handled', async () => {
    const key = unique();
    const session = await createSession(consul, { name: 'async' });
    await acquire(consul, key, session, '{"host":"db-1"}');
    const decode = async (): Promise<unknown> => {
      await delay(1);
      throw new Error('async decoder failed');
    };
    const rec = record(discovery.watch(key, { decode }));
    const state = await rec.next(settled);
    expect(state).toMatchObject({ status: 'invalid', error: { code: 'INVALID_DESCRIPTOR' } });
    if (state.status === 'invalid') {
      expect(state.error.message).toContain('decode returned a Promise: decoding must be synchronous');
    }
    const leader = await discovery.current(key, { decode });
    expect(leader).toBeNull();
    rec.unsubscribe();
    await delay(50);
    expect(unhandled).toEqual([]);
  });

  it('an async zod schema (refine, rejecting transform) gives invalid "the schema is async", nothing unhandled', async () => {
    const key = unique();
    const session = await createSession(consul, { name: 'async-schema' });
    await acquire(consul, key, session, '{"host":"db-1"}');
    const schemas = [
      z.object({ host: z.string() }).refine(async () => true),
      z.object({ host: z.string() }).transform(async () => {
        throw new Error('transform failed');
      }),
    ];
    for (const schema of schemas) {
      const rec = record(discovery.watch(key, { schema }));
      const state = await rec.next(settled);
      expect(state.status).toBe('invalid');
      if (state.status === 'invalid') expect(state.error.message).toContain('the schema is async');
      rec.unsubscribe();
    }
    await delay(50);
    expect(unhandled).toEqual([]);
  });
});

describe('tokens that cannot be an HTTP header value', () => {
  const address = (): { host: string; port: number } => ({ host: agent.host, port: agent.port });

  it.each([
    ['a line feed', 'sEcR\neT'],
    ['a carriage return', 'sEcR\reT'],
    ['an emoji', 'sEcR🔑eT'],
  ])(
    'with %s: INVALID_OPTION at once from every source, naming it and never the token',
    async (_what, token) => {
      const attempts: [string, () => unknown][] = [
        ['options.token', () => createLeaderDiscovery({ consul: address(), token })],
        [
          'options.consul.defaults.token',
          () => createLeaderDiscovery({ consul: { ...address(), defaults: { token } } }),
        ],
        [
          'CONSUL_HTTP_TOKEN',
          () => createLeaderDiscovery({ env: { CONSUL_HTTP_ADDR: agent.address, CONSUL_HTTP_TOKEN: token } }),
        ],
        ['options.token', () => discovery.watch('k', { token })],
      ];
      for (const [source, attempt] of attempts) {
        let thrown: unknown;
        try {
          attempt();
        } catch (error) {
          thrown = error;
        }
        expect(isLeaderDiscoveryError(thrown) && thrown.code).toBe('INVALID_OPTION');
        expect((thrown as Error).message).toContain(source);
        expect((thrown as Error).message).not.toContain('sEcR');
      }
      // current() rejects with the same typed error (it never sends a request).
      const rejected = await discovery.current('k', { token }).catch((error: unknown) => error);
      expect(isLeaderDiscoveryError(rejected) && rejected.code).toBe('INVALID_OPTION');
    },
  );
});

describe('keys Consul cannot serve', () => {
  it.each(['a/../b', 'a/.', 'a/./b', 'a//b', 'a\tb', 'a\nb'])(
    '%j throws INVALID_OPTION at once from every call, naming it',
    async (key) => {
      for (const call of [
        () => discovery.watch(key),
        () => discovery.leader(key),
        () => discovery.follow(key),
      ]) {
        expect(call).toThrow(/invalid option key/);
      }
      for (const call of [
        () => discovery.leaders(key),
        () => discovery.watchPrefix(key),
        () => discovery.watchLeaders(key),
      ]) {
        expect(call).toThrow(/invalid option prefix/);
      }
      const rejected = await discovery.current(key).catch((error: unknown) => error);
      expect(isLeaderDiscoveryError(rejected) && rejected.code).toBe('INVALID_OPTION');
      expect((rejected as Error).message).toContain(JSON.stringify(key));
    },
  );

  it('an empty prefix is refused with a message about the prefix', () => {
    expect(() => discovery.leaders('')).toThrow(/^invalid option prefix "": must not be empty/);
  });

  it('Consul indeed cannot serve them: a raw read is a redirect or a 400', async () => {
    for (const [path, status] of [
      ['a/../b', 301],
      ['a//b', 301],
    ] as const) {
      // As the SDK sends it: the key URI-encoded whole.
      const url = `http://${agent.host}:${agent.port}/v1/kv/${encodeURIComponent(path)}`;
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(status);
    }
  });
});

describe('current() in parallel', () => {
  it('100 calls at once print no MaxListenersExceededWarning, and all resolve', async () => {
    const key = unique();
    const session = await createSession(consul, { name: 'many' });
    await acquire(consul, key, session, '{"host":"db-1"}');
    const leaders = await Promise.all(Array.from({ length: 100 }, () => discovery.current(key)));
    expect(leaders.every((l) => l?.session.id === session)).toBe(true);
    await delay(20);
    expect(warnings.map((w) => w.message)).toEqual([]);
  });
});
