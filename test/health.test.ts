/**
 * `handle.state` and `leaderHealth()` (issue #15, its first step) against a real Consul
 * agent, through real HTTP requests: 200 with the leader, 503 without, and while Consul
 * cannot be read, 200 by default (the last leader is kept and routed to) or the stricter
 * status when asked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createLeaderDiscovery,
  isLeaderDiscoveryError,
  NoLeaderError as MainNoLeaderError,
} from '@consul-leader/discovery';
import { type LeaderHealthBody, NoLeaderError, leaderHealth } from '@consul-leader/discovery/http';
import { useAgent } from './support/agent.js';
import { acquire, createSession, release } from './support/contender.js';
import { until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number() });
const env = useAgent({ proxy: true });
const uniqueKey = (): string => env.uniqueKey('health');

async function serve(handler: ReturnType<typeof leaderHealth>): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

const get = async (url: string): Promise<{ status: number; body: LeaderHealthBody }> => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as LeaderHealthBody };
};

describe('handle.state and leaderHealth()', () => {
  it('200 with the leader, 503 while vacant; handle.state follows watch()', async () => {
    const discovery = createLeaderDiscovery({ consul: { host: env.agent.host, port: env.agent.port } });
    const key = uniqueKey();
    using handle = discovery.follow(key, { schema: Node });
    const { url, server } = await serve(leaderHealth(handle));
    try {
      expect(handle.state).toBeUndefined();
      await handle.ready();
      expect(handle.state).toMatchObject({ status: 'vacant', reason: 'key-missing', key });
      const vacant = await get(url);
      expect(vacant.status).toBe(503);
      expect(vacant.body).toMatchObject({
        key,
        status: 'vacant',
        leader: null,
        consul: { knownLeader: true },
      });

      const session = await createSession(env.consul, { name: 'db-1' });
      await acquire(env.consul, key, session, JSON.stringify({ host: 'db-1', port: 5432 }));
      await until('the leader', () => handle.state?.status === 'leader');
      const up = await get(url);
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({
        key,
        status: 'leader',
        leader: { sessionId: session, node: { host: 'db-1', port: 5432 } },
        consul: { lastContactMs: 0, knownLeader: true },
      });
      expect(Date.parse(up.body.since)).toBeGreaterThan(Date.parse(vacant.body.since) - 1);

      await release(env.consul, key, session);
      await until('vacant again', () => handle.state?.status === 'vacant');
      expect((await get(url)).status).toBe(503);
      expect((await fetch(url, { method: 'POST' })).status).toBe(405);
      expect((await fetch(url, { method: 'HEAD' })).status).toBe(503);
    } finally {
      server.close();
      discovery.close();
    }
    expect(handle.state).toBeUndefined();
  });

  it('while Consul cannot be read: 200 with the kept leader by default, or unreachableStatus', async () => {
    const discovery = createLeaderDiscovery({
      consul: { host: env.proxy.host, port: env.proxy.port },
      // A short wait: the blocking read in flight when the fault starts ends soon.
      wait: '1s',
      retry: { initialDelayMs: 50, maxDelayMs: 100 },
    });
    const key = uniqueKey();
    const session = await createSession(env.consul, { name: 'db-2' });
    await acquire(env.consul, key, session, JSON.stringify({ host: 'db-2', port: 1 }));
    using handle = discovery.follow(key, { schema: Node });
    const lenient = await serve(leaderHealth(handle));
    const strict = await serve(leaderHealth(handle, { unreachableStatus: 503 }));
    try {
      await handle.ready();
      expect((await get(lenient.url)).status).toBe(200);
      env.proxy.rule = () => ({ action: 'reset' });
      await until('unreachable', () => handle.state?.status === 'unreachable');
      const kept = await get(lenient.url);
      expect(kept.status).toBe(200);
      expect(kept.body).toMatchObject({ status: 'unreachable', leader: { sessionId: session } });
      expect((await get(strict.url)).status).toBe(503);
      env.proxy.rule = undefined;
      await until('read again', () => handle.state?.status === 'leader');
      expect((await get(strict.url)).status).toBe(200);
      // The endpoint holds no subscription of its own: closing the handle ends the key's query.
      handle.close();
      await until('the query ended', () => env.proxy.inFlight(`/v1/kv/${key}`) === 0);
      expect(handle.state).toBeUndefined();
    } finally {
      env.proxy.rule = undefined;
      lenient.server.close();
      strict.server.close();
      discovery.close();
    }
  });

  it('a descriptor JSON cannot write does not break the endpoint', async () => {
    const discovery = createLeaderDiscovery({ consul: { host: env.agent.host, port: env.agent.port } });
    const key = uniqueKey();
    const session = await createSession(env.consul, { name: 'deep' });
    await acquire(env.consul, key, session, '['.repeat(3000) + ']'.repeat(3000));
    using handle = discovery.follow(key);
    const { url, server } = await serve(leaderHealth(handle));
    try {
      await handle.ready();
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const body = (await res.json()) as LeaderHealthBody & { error?: { code: string } };
      expect(body.leader).toEqual({ sessionId: session, node: null });
      expect(body.error?.code).toBe('INVALID_DESCRIPTOR');
    } finally {
      server.close();
      discovery.close();
    }
  });

  it('NoLeaderError (NO_LEADER) is exported from the subpath and the main entry', () => {
    expect(NoLeaderError).toBe(MainNoLeaderError);
    const error = new NoLeaderError('service/db/leader');
    expect(isLeaderDiscoveryError(error) && error.code).toBe('NO_LEADER');
  });
});
