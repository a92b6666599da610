/**
 * The transport against a real agent, over what the network setups of users
 * need beyond loopback TCP (TLS and faults have their own files).
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, freeLoopbackHost, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import { record } from './support/recorder.js';

const socket = join(tmpdir(), `consul-leader-${process.pid}.sock`);
let agent: ConsulAgent;

beforeAll(async () => {
  const host = await freeLoopbackHost();
  // TCP for the test's own writes (and the agent's readiness check), the unix socket for the SDK.
  agent = await startConsulAgent({ host, hcl: `addresses { http = "${host} unix://${socket}" }` });
});

afterAll(async () => {
  await agent?.destroy();
  rmSync(socket, { force: true });
});

it('follows a leader over a unix socket given as CONSUL_HTTP_ADDR=unix://…', async () => {
  const discovery = createLeaderDiscovery({ env: { CONSUL_HTTP_ADDR: `unix://${socket}` } });
  const consul = consulClient(agent.address);
  const key = 'transport/unix/leader';
  const rec = record(discovery.leader(key, { schema: z.object({ host: z.string() }) }));
  await rec.next((v) => v === null);
  const session = await createSession(consul);
  await acquire(consul, key, session, JSON.stringify({ host: 'over-a-socket' }));
  const leader = await rec.next((v) => v !== null);
  expect(leader?.node.host).toBe('over-a-socket');
  expect(leader?.session.id).toBe(session);
  await release(consul, key, session);
  await rec.next((v) => v === null);
  expect(await discovery.current(key)).toBeNull();
  rec.unsubscribe();
  discovery.close();
});
