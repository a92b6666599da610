/**
 * The fan-out case's subscriber process (started with --expose-gc by
 * bench/child.ts, as plain JavaScript): one `createLeaderDiscovery` reading through the parent's
 * counting proxy, N subscribers on one key, and the writer that makes each
 * change (bare `http`, straight to the agent) so that the change's timestamp
 * and the subscribers' emissions are on one clock.
 */
import type { Subscription } from 'rxjs';
import { type Leader, type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { serveParent, settledMemory } from '../in-child.js';
import { now, sleep } from '../clock.js';
import { ConsulHttp } from '../consul-http.js';
import { seqOf } from '../latency/protocol.js';
import type { ChangeOutcome, FanoutMode, FanoutRequest } from './protocol.js';

const SUBSCRIBE_TIMEOUT_MS = 20_000;

let discovery: LeaderDiscovery | undefined;
let writer: ConsulHttp | undefined;
let key = '';
let holder: string | null = null;
let seq = 0;
let subscriptions: Subscription[] = [];

// What the subscribers count: emissions, subscribers with a first value, and
// those that saw the pending change.
let emissions = 0;
let withValue = 0;
let expected: ((leader: Leader<unknown> | null) => boolean) | undefined;
let target = 0;
let seen = 0;
let firstAt = 0;
let lastAt = 0;
let onAllSeen: (() => void) | undefined;

/** One subscriber: its own closure, as an application's would be. */
function subscriber(): (leader: Leader<unknown> | null) => void {
  let first = true;
  return (leader) => {
    emissions += 1;
    if (first) {
      first = false;
      withValue += 1;
    }
    if (expected?.(leader)) {
      seen += 1;
      const at = now();
      if (seen === 1) firstAt = at;
      if (seen === target) {
        lastAt = at;
        onAllSeen?.();
      }
    }
  };
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!check()) {
    if (now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(2);
  }
}

async function subscribe(count: number, mode: FanoutMode): Promise<{ ms: number }> {
  if (!discovery) throw new Error('not initialized');
  const started = now();
  withValue = 0;
  target = count;
  const shared = discovery.leader(key);
  for (let i = 0; i < count; i += 1) {
    const source = mode === 'shared' ? shared : discovery.leader(key);
    subscriptions.push(source.subscribe(subscriber()));
  }
  await until(`${count} subscribers' first value`, () => withValue === count, SUBSCRIBE_TIMEOUT_MS);
  return { ms: now() - started };
}

async function change(timeoutMs: number, gapMs: number): Promise<ChangeOutcome> {
  if (!writer) throw new Error('not initialized');
  seq += 1;
  const mine = seq;
  const kind = holder === null ? 'acquire' : 'release';
  // A new session for each acquisition, created outside the timed part.
  const session = holder ?? (await writer.createSession({ name: `fanout-${mine}`, lockDelay: '0s' }));
  expected =
    kind === 'acquire'
      ? (leader) => leader !== null && leader.session.id === session && seqOf(leader.node) === mine
      : (leader) => leader === null;
  seen = 0;
  firstAt = 0;
  lastAt = 0;
  const emissionsBefore = emissions;
  let timer: NodeJS.Timeout | undefined;
  const allSeen = new Promise<boolean>((resolve) => {
    onAllSeen = () => resolve(true);
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const cpuBefore = process.cpuUsage();
  const value = JSON.stringify({ seq: mine });
  const sent =
    kind === 'acquire'
      ? await writer.acquire(key, session, value)
      : await writer.release(key, session, value);
  if (!sent.value) throw new Error(`PUT ?${kind}: Consul answered false`);
  holder = kind === 'acquire' ? session : null;
  const complete = await allSeen;
  clearTimeout(timer);
  const outcome = { seen, firstAt: seen > 0 ? firstAt : null, lastAt: complete ? lastAt : null };
  expected = undefined;
  onAllSeen = undefined;
  await sleep(gapMs);
  const cpu = process.cpuUsage(cpuBefore);
  return {
    seq: mine,
    kind,
    sentAt: sent.sentAt,
    ...outcome,
    emissions: emissions - emissionsBefore,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function handle(request: FanoutRequest): Promise<unknown> {
  switch (request.type) {
    case 'init': {
      key = request.key;
      discovery = createLeaderDiscovery({ consul: { host: request.proxy.host, port: request.proxy.port } });
      writer = new ConsulHttp(request.agent.host, request.agent.port);
      return null;
    }
    case 'memory':
      return settledMemory();
    case 'subscribe':
      return subscribe(request.subscribers, request.mode);
    case 'change':
      return change(request.timeoutMs, request.gapMs);
    case 'unsubscribe': {
      for (const subscription of subscriptions) subscription.unsubscribe();
      subscriptions = [];
      await sleep(50);
      return null;
    }
    case 'exit':
      return null;
  }
}

serveParent<FanoutRequest>(handle, async () => {
  for (const subscription of subscriptions) subscription.unsubscribe();
  discovery?.close();
  writer?.close();
});
