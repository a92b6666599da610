/**
 * examples/dashboard against a real Consul dev agent.
 *
 * - The event stream, without a browser: `fetch('/events')` parsed frame by frame,
 *   a snapshot, then `state` events as keys change and `removed` when one is deleted.
 * - The page in headless Chromium (Debian's /usr/bin/chromium, driven by
 *   playwright-core): two leaders, a failover (the leader's session destroyed, a
 *   second session acquires) shown with `vacant` in the key's history, a Consul
 *   outage shown as a banner; a screenshot for the README.
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type Consul from 'consul';
import { z } from 'zod';
import { type Browser, chromium } from 'playwright-core';
import { ErrorInfoSchema, leaderStateSchema } from '@consul-leader/types';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { type Dashboard, createDashboard } from '../examples/dashboard/dashboard.js';
import { acquire, consulClient, createSession, destroySession } from './support/contender.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const NO_CHROMIUM = `skipped: no Chromium at ${CHROMIUM}; install it with \`apt-get update && apt-get install -y chromium\` (as root), or set CHROMIUM_PATH`;
/**
 * The README's screenshot is written when absent or with UPDATE_SCREENSHOTS=1, so that
 * ordinary runs leave the tree clean; otherwise it goes to .tmp/ (ignored by git).
 */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1' || !existsSync(join(ROOT, 'docs', 'dashboard.png'))
    ? join(ROOT, 'docs', 'dashboard.png')
    : join(ROOT, '.tmp', 'dashboard.png');

const State = leaderStateSchema(z.unknown());
const Outage = ErrorInfoSchema.extend({ attempt: z.number().int(), retryInMs: z.number() });
const Snapshot = z.object({ prefix: z.string(), states: z.array(State), unreachable: Outage.nullable() });

let agent: ConsulAgent;
let consul: Consul;
let discovery: LeaderDiscovery;
let n = 0;
const uniquePrefix = (): string => `dashboard/t${++n}-${Date.now()}/`;

/** Teardowns of the running test, run in reverse order after it (pass or fail). */
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  agent = await startConsulAgent();
  consul = consulClient(agent.address);
  discovery = createLeaderDiscovery({
    consul: { host: agent.host, port: agent.port },
    retry: { initialDelayMs: 100, maxDelayMs: 1000 },
  });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  discovery?.close();
  await agent?.destroy();
});

async function startDashboard(
  prefix: string,
  heartbeatMs?: number,
): Promise<{ dashboard: Dashboard; url: string }> {
  const dashboard = createDashboard({ discovery, prefix, heartbeatMs });
  await new Promise<void>((resolve) => dashboard.server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => dashboard.close());
  return { dashboard, url: `http://127.0.0.1:${(dashboard.server.address() as AddressInfo).port}` };
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Campaigns for `key` with a fresh session; returns the session id. */
async function lead(key: string, name: string): Promise<string> {
  const session = await createSession(consul, { name });
  expect(
    await acquire(consul, key, session, JSON.stringify({ host: `${name}.internal`, port: 5432, name })),
  ).toBe(true);
  return session;
}

// ---- the event stream, read with fetch

interface Frame {
  readonly id?: number;
  readonly event?: string;
  readonly data?: unknown;
  readonly comment?: string;
}

/** Parses a text/event-stream body into frames as they arrive. */
function readFrames(body: ReadableStream<Uint8Array>, frames: Frame[]): void {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const fields: Record<string, string> = {};
          for (const line of buffer.slice(0, end).split('\n')) {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            fields[field] = fields[field] === undefined ? value : `${fields[field]}\n${value}`;
          }
          buffer = buffer.slice(end + 2);
          frames.push({
            ...(fields.id === undefined ? {} : { id: Number(fields.id) }),
            ...(fields.event === undefined ? {} : { event: fields.event }),
            ...(fields.data === undefined ? {} : { data: JSON.parse(fields.data) as unknown }),
            ...(fields[''] === undefined ? {} : { comment: fields[''] }),
          });
        }
      }
    } catch {
      // aborted at the end of the test
    }
  })();
}

describe('dashboard event stream (no browser)', () => {
  it('sends a snapshot, then state events on changes and removed on delete', async () => {
    const prefix = uniquePrefix();
    const a = `${prefix}a/leader`;
    const b = `${prefix}b/leader`;
    const sessionA = await lead(a, 'a-1');
    const { dashboard, url } = await startDashboard(prefix, 300);

    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const response = await fetch(`${url}/events`, { signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    if (!response.body) throw new Error('no body');
    const frames: Frame[] = [];
    readFrames(response.body, frames);
    const events = (): Frame[] => frames.filter((f) => f.event !== undefined);
    const stateOf = (frame: Frame) => State.parse(frame.data);
    const seen = (predicate: (frame: Frame) => boolean, what: string) =>
      until(`${what}; saw ${JSON.stringify(events())}`, () => events().some(predicate));

    await seen((f) => f.event === 'snapshot', 'a snapshot');
    const [snapshotFrame] = events();
    expect(snapshotFrame?.event).toBe('snapshot');
    const snapshot = Snapshot.parse(snapshotFrame?.data);
    expect(snapshot.prefix).toBe(prefix);
    expect(snapshot.unreachable).toBeNull();
    expect(snapshot.states.map((s) => s.key)).toEqual([a]);
    const first = snapshot.states[0];
    expect(first?.status === 'leader' && first.leader.session.id).toBe(sessionA);
    expect(first?.status === 'leader' && first.leader.node).toEqual({
      host: 'a-1.internal',
      port: 5432,
      name: 'a-1',
    });
    expect(dashboard.clients()).toBe(1);

    // A second key appears: one state event, for it alone.
    const sessionB = await lead(b, 'b-1');
    await seen((f) => f.event === 'state' && stateOf(f).key === b, 'a state event for b');
    const bState = stateOf(events().find((f) => f.event === 'state' && stateOf(f).key === b) ?? {});
    expect(bState.status === 'leader' && bState.leader.session.id).toBe(sessionB);
    expect(events().filter((f) => f.event === 'state' && stateOf(f).key === a)).toEqual([]);

    // a's leader goes: vacant.
    await destroySession(consul, sessionA);
    await seen((f) => f.event === 'state' && stateOf(f).key === a, 'a state event for a');
    const aState = stateOf(events().find((f) => f.event === 'state' && stateOf(f).key === a) ?? {});
    expect(aState).toMatchObject({ status: 'vacant', key: a, reason: 'no-session' });

    // b is deleted: removed.
    await consul.kv.del(b);
    await seen((f) => f.event === 'removed', 'a removed event');
    expect(events().find((f) => f.event === 'removed')?.data).toEqual({ key: b });

    // Every event has an increasing id; every state payload passes the schema; heartbeats come.
    const ids = events().map((f) => f.id ?? 0);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    for (const frame of events()) if (frame.event === 'state') State.parse(frame.data);
    await until('a heartbeat comment', () => frames.some((f) => f.comment === 'heartbeat'));

    // The client goes: the server stops relaying to it.
    controller.abort();
    await until('the stream closed on the server', () => dashboard.clients() === 0);
    await destroySession(consul, sessionB);
  });
});

describe('dashboard page (headless Chromium)', () => {
  if (!HAS_CHROMIUM) console.warn(`test/dashboard.test.ts: the browser test is ${NO_CHROMIUM}`);
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  it.skipIf(!HAS_CHROMIUM)(
    `shows the leaders live: a failover, its vacant state in the history, a Consul outage${HAS_CHROMIUM ? '' : ` (${NO_CHROMIUM})`}`,
    async () => {
      // The agent is this file's own: a plain prefix, for the screenshot.
      const prefix = 'service/';
      const alpha = `${prefix}billing/leader`;
      const beta = `${prefix}orders/leader`;
      const alpha1 = await lead(alpha, 'billing-1');
      const beta1 = await lead(beta, 'orders-1');
      const { url } = await startDashboard(prefix);

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 260 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      await page.goto(`${url}/`);

      const row = (key: string) => page.locator(`tr[data-key="${key}"]`);
      const waitStatus = (key: string, status: string) =>
        page.waitForSelector(`tr[data-key="${key}"][data-status="${status}"]`, { timeout: 20_000 });

      // Both leaders.
      await waitStatus(alpha, 'leader');
      await waitStatus(beta, 'leader');
      expect(await page.locator('#prefix').textContent()).toBe(prefix);
      expect(await row(alpha).locator('td.leader').textContent()).toContain('"name":"billing-1"');
      expect(await row(beta).locator('td.leader').textContent()).toContain('"name":"orders-1"');
      expect(await row(alpha).locator('td.session').textContent()).toContain(alpha1.slice(0, 8));
      expect(await row(beta).locator('td.session').textContent()).toContain(beta1.slice(0, 8));
      expect((await row(alpha).locator('td.node').textContent())?.trim()).not.toBe('—');
      expect(await page.locator('#banner').isVisible()).toBe(false);

      // Failover of alpha: its leader's session is destroyed (vacant), then a second session acquires.
      await destroySession(consul, alpha1);
      await waitStatus(alpha, 'vacant');
      expect(await row(alpha).locator('td.leader').textContent()).toContain('no-session');
      const alpha2 = await lead(alpha, 'billing-2');
      await waitStatus(alpha, 'leader');
      expect(await row(alpha).locator('td.leader').textContent()).toContain('"name":"billing-2"');
      expect(await row(alpha).locator('td.session').textContent()).toContain(alpha2.slice(0, 8));
      expect(
        await row(alpha)
          .locator('td.history span')
          .evaluateAll((spans) => spans.map((s) => s.className)),
      ).toEqual(['leader', 'vacant', 'leader']);
      expect(await row(beta).locator('td.history span').count()).toBe(1);
      // "Since" ticks: a fresh change reads a few seconds, an unchanged key a lower bound.
      await expect
        .poll(async () => row(alpha).locator('td.since').textContent(), { timeout: 5_000 })
        .toMatch(/^[1-9]\d*s$/);
      expect(await row(beta).locator('td.since').textContent()).toMatch(/^>\d+s$/);

      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);

      // Consul goes away: a banner, and every key shows unreachable; then back (a dev agent comes back empty).
      await agent.stop();
      await page.waitForSelector('#banner.shown', { timeout: 20_000 });
      expect(await page.locator('#banner').textContent()).toContain('Consul unreachable');
      await waitStatus(alpha, 'unreachable');
      await waitStatus(beta, 'unreachable');
      await agent.start();
      await page.waitForSelector('#banner:not(.shown)', { state: 'attached', timeout: 30_000 });
      await page.waitForSelector(`tr[data-key="${alpha}"]`, { state: 'detached', timeout: 20_000 });

      expect(await page.locator('#rejected').textContent()).toBe('');
      expect(problems).toEqual([]);
    },
  );
});
