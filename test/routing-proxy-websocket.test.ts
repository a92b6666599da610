/**
 * WebSockets through createLeaderProxy (issue #15): real backend processes campaign for
 * the key; a WebSocket opened through the proxy reaches the leader of the moment, and
 * after a step-down a new one reaches the next leader.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'undici';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { createLeaderProxy } from '@consul-leader/discovery/http';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type Backends, startBackends } from './support/routing-backends.js';
import { until } from './support/recorder.js';

const Node = z.object({ host: z.string(), port: z.number(), name: z.string() });

let agent: ConsulAgent;
let discovery: LeaderDiscovery;
let backends: Backends;
const key = `proxy-ws/${Date.now()}/leader`;

beforeAll(async () => {
  agent = await startConsulAgent();
  discovery = createLeaderDiscovery({ consul: { host: agent.host, port: agent.port } });
  backends = await startBackends({ consulAddress: agent.address, key, count: 2 });
});
afterAll(async () => {
  await backends?.close();
  discovery?.close();
  await agent?.destroy();
});

/** Opens a WebSocket, sends one message, resolves with the echo, closes. */
async function echo(url: string, text: string): Promise<string> {
  const ws = new WebSocket(url);
  const reply = new Promise<string>((resolve, reject) => {
    ws.addEventListener('message', (event) => resolve(String(event.data)));
    ws.addEventListener('error', () => reject(new Error('the WebSocket failed')));
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  ws.send(text);
  const answer = await reply;
  const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
  ws.close(1000);
  await closed;
  return answer;
}

describe('createLeaderProxy: upgrades', () => {
  it('a WebSocket reaches the leader of the moment, before and after a step-down', async () => {
    using handle = discovery.follow(key, { schema: Node });
    const proxy = createLeaderProxy(handle, {
      origin: (l) => `http://${l.node.host}:${l.node.port}`,
      waitForLeader: '5s',
    });
    const server = http.createServer(proxy).on('upgrade', proxy.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
    try {
      const first = await backends.leader();
      await until('the handle sees the first leader', () => handle.current?.node.name === first.name);
      expect(await echo(url, 'hello')).toBe(`${first.name}:hello`);

      const released = await first.stepDown(60_000);
      await until('the handle sees the next leader', () => {
        const current = handle.current;
        return current !== null && current.session.id !== released;
      });
      const next = handle.current?.node.name;
      expect(next).not.toBe(first.name);
      expect(await echo(url, 'again')).toBe(`${next}:again`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await proxy.close();
    }
  });
});
