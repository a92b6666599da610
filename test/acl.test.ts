/**
 * ACLs, default deny: a 403 is `PERMISSION_DENIED`, never "no leader"; a fixed
 * policy lets the stream recover; the token is never exposed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import type { ConsulAgent } from '../scripts/consul-agent.js';
import { electWhenReady, startAclAgent } from './support/acl.js';
import { describe as show, record } from './support/recorder.js';

const MASTER = 'a1b2c3d4-0000-4000-8000-00000000beef';
const Node = z.object({ host: z.string() });
const KEY = 'acl/service/leader';
let agent: ConsulAgent;
const discoveries: LeaderDiscovery[] = [];

async function api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${agent.address}/v1${path}`, {
    method,
    headers: { 'x-consul-token': MASTER },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

const READER_RULES = `key_prefix "acl/" { policy = "read" }\nsession_prefix "" { policy = "read" }`;

function discoveryWith(token: string): LeaderDiscovery {
  const d = createLeaderDiscovery({
    consul: { host: agent.host, port: agent.port },
    token,
    retry: { initialDelayMs: 100, maxDelayMs: 500, permissionDeniedDelayMs: 500 },
  });
  discoveries.push(d);
  return d;
}

beforeAll(async () => {
  agent = await startAclAgent(MASTER);
  await electWhenReady(agent, MASTER, KEY, 'acl-leader', JSON.stringify({ host: 'acl-host' }));
});

afterAll(async () => {
  for (const d of discoveries) d.close();
  await agent?.destroy();
});

it('follows the leader with a token that reads only the leader keys and sessions', async () => {
  const policy = await api('PUT', '/acl/policy', { Name: 'leader-reader', Rules: READER_RULES });
  const token = await api('PUT', '/acl/token', { Policies: [{ ID: policy.ID }] });
  const leader = await discoveryWith(String(token.SecretID)).current(KEY, { schema: Node });
  expect(leader?.node.host).toBe('acl-host');
  expect(leader?.session.name).toBe('acl-leader');
});

it('reports a missing or unknown token as PERMISSION_DENIED, not as "no leader", and never shows the token', async () => {
  const wrong = 'ffffffff-1111-4222-8333-444444444444';
  for (const token of [wrong, '']) {
    const d = discoveryWith(token);
    const states = record(d.watch(KEY, { schema: Node }));
    const leaders = record(d.leader(KEY, { schema: Node }));
    const denied = await states.next((v) => v.status === 'unreachable' && v.attempt >= 2);
    if (denied.status !== 'unreachable') throw new Error('unexpected');
    expect(denied.error.code).toBe('PERMISSION_DENIED');
    expect(denied.error.status).toBe(403);
    expect(denied.retryInMs).toBeGreaterThanOrEqual(500);
    expect(states.values.every((v) => v.status === 'unreachable')).toBe(true);
    expect(leaders.values).toEqual([]);
    await expect(d.current(KEY)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    if (token) {
      const seen =
        show(states.values) +
        states.values.map((v) => (v.status === 'unreachable' ? `${v.error.stack}` : '')).join();
      expect(seen).not.toContain(token);
    }
    states.unsubscribe();
    leaders.unsubscribe();
  }
});

it('recovers once the policy is fixed', async () => {
  const policy = await api('PUT', '/acl/policy', {
    Name: 'sessions-only',
    Rules: 'session_prefix "" { policy = "read" }',
  });
  const token = await api('PUT', '/acl/token', { Policies: [{ ID: policy.ID }] });
  const d = discoveryWith(String(token.SecretID));
  const states = record(d.watch(KEY, { schema: Node }));
  await states.next((v) => v.status === 'unreachable' && v.error.code === 'PERMISSION_DENIED');
  await api('PUT', `/acl/policy/${String(policy.ID)}`, { Name: 'sessions-only', Rules: READER_RULES });
  const recovered = await states.next((v) => v.status === 'leader');
  expect(recovered.status === 'leader' && recovered.leader.node.host).toBe('acl-host');
  expect(show(states.values)).not.toContain(String(token.SecretID));
  states.unsubscribe();
});
