/**
 * Consul Enterprise's namespaces and partitions, and HTTP basic auth in front of the
 * agents (issue #14), against a real Consul 1.8.7 (OSS) agent: OSS refuses `?ns=` with a
 * 400, which is an outage retried slowly, never a spin; basic auth is checked by a proxy
 * in front of the agent that refuses requests without the right credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import {
  type LeaderDiscovery,
  type LeaderState,
  createLeaderDiscovery,
  isLeaderDiscoveryError,
} from '@consul-leader/discovery';
import { bigintReplacer } from '@consul-leader/types';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type ConsulProxy, startProxy } from './support/proxy.js';
import { acquire, consulClient, createSession } from './support/contender.js';
import { record } from './support/recorder.js';
import { cleanEnv, requireBuiltCli, runCli } from './support/cli.js';

const Node = z.object({ host: z.string() });
const RETRY = { initialDelayMs: 50, maxDelayMs: 200, permissionDeniedDelayMs: 1_500 };
let agent: ConsulAgent;
let consul: Consul;
let proxy: ConsulProxy;
const open: LeaderDiscovery[] = [];
let n = 0;
const uniqueKey = (): string => `ent/t${++n}-${Date.now()}/leader`;

const USER = 'gateway';
const PASSWORD = 'pa:ss wörd';
const AUTHORIZATION = `Basic ${Buffer.from(`${USER}:${PASSWORD}`, 'utf8').toString('base64')}`;

beforeAll(async () => {
  requireBuiltCli();
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  proxy = await startProxy({ host: agent.host, port: agent.port });
});
afterAll(async () => {
  for (const discovery of open) discovery.close();
  await proxy?.close();
  await agent?.destroy();
});

const discoveryOf = (options: Parameters<typeof createLeaderDiscovery>[0]): LeaderDiscovery => {
  const discovery = createLeaderDiscovery({ retry: RETRY, ...options });
  open.push(discovery);
  return discovery;
};

async function heldKey(): Promise<string> {
  const key = uniqueKey();
  const session = await createSession(consul, { name: 'db-1' });
  await acquire(consul, key, session, '{"host":"db-1"}');
  return key;
}

describe('namespace and partition', () => {
  const direct = () => ({ host: agent.host, port: agent.port });

  it.each([
    ['the option', () => discoveryOf({ consul: direct(), namespace: 'team-a' }), {}],
    ['CONSUL_NAMESPACE', () => discoveryOf({ consul: direct(), env: { CONSUL_NAMESPACE: 'team-a' } }), {}],
    ['a per-call namespace', () => discoveryOf({ consul: direct() }), { namespace: 'team-a' }],
  ])("from %s, against OSS: unreachable with Consul's 400, retried slowly", async (_from, make, call) => {
    const discovery = make();
    const key = await heldKey();
    const rec = record(discovery.watch(key, call));
    const first = await rec.next((s) => s.status === 'unreachable');
    if (first.status !== 'unreachable') throw new Error('expected unreachable');
    expect(first.error.code).toBe('CONSUL_HTTP_ERROR');
    expect(first.error.status).toBe(400);
    expect(first.error.message).toContain('Namespaces are a Consul Enterprise feature');
    expect(first.retryInMs).toBeGreaterThanOrEqual(RETRY.permissionDeniedDelayMs);
    rec.unsubscribe();
    const rejected = await discovery.current(key, call).catch((e: unknown) => e);
    expect(isLeaderDiscoveryError(rejected) && rejected.status).toBe(400);
  });

  it('a partition is sent as ?partition= (Consul 1.8 ignores it: the leader is read)', async () => {
    proxy.requests.length = 0;
    const discovery = discoveryOf({ consul: { host: proxy.host, port: proxy.port }, partition: 'part-a' });
    const key = await heldKey();
    const leader = await discovery.current(key, { schema: Node });
    expect(leader?.node.host).toBe('db-1');
    const reads = proxy.requests.filter((r) => r.path.startsWith('/v1/'));
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((r) => r.query.get('partition') === 'part-a')).toBe(true);
  });
});

describe('HTTP basic auth (CONSUL_HTTP_AUTH, httpAuth)', () => {
  let guarded: ConsulProxy;
  beforeAll(async () => {
    guarded = await startProxy({ host: agent.host, port: agent.port });
    guarded.rule = (req) =>
      req.headers.authorization === AUTHORIZATION
        ? undefined
        : { action: 'respond', status: 401, body: 'Unauthorized', headers: { 'www-authenticate': 'Basic' } };
  });
  afterAll(() => guarded?.close());
  const address = () => ({ host: guarded.host, port: guarded.port });

  it.each([
    ['httpAuth as user:password', () => discoveryOf({ consul: address(), httpAuth: `${USER}:${PASSWORD}` })],
    [
      'httpAuth as an object',
      () => discoveryOf({ consul: address(), httpAuth: { username: USER, password: PASSWORD } }),
    ],
    [
      'CONSUL_HTTP_AUTH',
      () =>
        discoveryOf({ env: { CONSUL_HTTP_ADDR: guarded.address, CONSUL_HTTP_AUTH: `${USER}:${PASSWORD}` } }),
    ],
  ])('%s: every request carries it, the leader is followed', async (_how, make) => {
    const discovery = make();
    const key = await heldKey();
    expect((await discovery.current(key, { schema: Node }))?.node.host).toBe('db-1');
    const rec = record(discovery.leader(key, { schema: Node }));
    expect((await rec.next((l) => l !== null))?.node.host).toBe('db-1');
    rec.unsubscribe();
  });

  it('without it: unreachable with the 401, and the credentials appear nowhere', async () => {
    const key = await heldKey();
    const without = discoveryOf({ consul: address() });
    const rec = record(without.watch(key));
    const down = (await rec.next((s) => s.status === 'unreachable')) as LeaderState<unknown>;
    rec.unsubscribe();
    expect(down.status === 'unreachable' && down.error.status).toBe(401);
    // A wrong password: refused too, and not echoed.
    const wrong = discoveryOf({ consul: address(), httpAuth: `${USER}:wrong-${PASSWORD}` });
    const refused = await wrong.current(key).catch((e: unknown) => e);
    expect(isLeaderDiscoveryError(refused) && refused.status).toBe(401);
    const shown = [JSON.stringify(down, bigintReplacer), String((refused as Error).stack)].join('\n');
    expect(shown).not.toContain(PASSWORD);
    expect(shown).not.toContain('wrong-');
    expect(shown).not.toContain(AUTHORIZATION);
  });

  it('the CLI reads CONSUL_HTTP_AUTH too, and never prints it', async () => {
    const key = await heldKey();
    const ok = await runCli(
      ['get', key],
      cleanEnv({ CONSUL_HTTP_ADDR: guarded.address, CONSUL_HTTP_AUTH: `${USER}:${PASSWORD}` }),
    );
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('"host":"db-1"');
    const refused = await runCli(['get', key], cleanEnv({ CONSUL_HTTP_ADDR: guarded.address }));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CONSUL_HTTP_ERROR (401)');
    const bad = await runCli(
      ['get', key],
      cleanEnv({ CONSUL_HTTP_ADDR: guarded.address, CONSUL_HTTP_AUTH: 'u:p\nx' }),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CONSUL_HTTP_AUTH');
    expect(bad.stderr).not.toContain('u:p');
  });
});
