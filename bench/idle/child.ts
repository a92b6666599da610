/**
 * The idle case's follower process (started with --expose-gc by
 * bench/child.ts, as plain JavaScript): one `createLeaderDiscovery` following many keys through
 * the parent's counting proxy, either with one `leader(key)` per key or with
 * one `leaders(prefix)`, while nothing changes.
 */
import http from 'node:http';
import type { Subscription } from 'rxjs';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { serveParent, settledMemory } from '../in-child.js';
import { now, sleep } from '../clock.js';
import { consulIndex, httpRequest, readKvHolder } from '../latency/http.js';
import type { Address } from '../fanout/protocol.js';
import type { IdleMode, IdleRequest, IdleWindow } from './protocol.js';

const FOLLOW_TIMEOUT_MS = 60_000;

let discovery: LeaderDiscovery | undefined;
let target: Address = { host: '', port: 0 };
let wait = '';
/** The floor's keep-alive agent and whether it was told to stop. */
const floorAgent = new http.Agent({ keepAlive: true });
let stopped = false;
let mode: IdleMode = 'per-key';
let prefix = '';
let keys: readonly string[] = [];
const subscriptions: Subscription[] = [];
let emissions = 0;
let leading = 0;
/** CPU time is also read every SLICE_MS during the window, for its spread. */
const SLICE_MS = 5_000;

let window:
  | {
      readonly cpu: NodeJS.CpuUsage;
      readonly elu: ReturnType<typeof performance.eventLoopUtilization>;
      readonly emissions: number;
      readonly at: number;
      readonly slices: number[];
      readonly timer: NodeJS.Timeout;
    }
  | undefined;

/** The reference: a loop of blocking reads of `key`, parsing each answer, nothing else (as case 1's floor). */
async function floorLoop(key: string): Promise<void> {
  let index = 0n;
  let last: string | undefined;
  while (!stopped) {
    const query = index > 0n ? `?index=${index}&wait=${wait}` : '';
    const answer = await httpRequest({
      agent: floorAgent,
      host: target.host,
      port: target.port,
      method: 'GET',
      path: `/v1/kv/${key}${query}`,
    });
    const received = consulIndex(answer.headers);
    index = received < index ? 0n : received;
    const holder = readKvHolder(answer);
    const view = `${holder?.session ?? ''} ${holder?.valueText ?? ''}`;
    if (view !== last) {
      if (last === undefined && holder?.session) leading += 1;
      last = view;
      emissions += 1;
    }
  }
}

async function follow(): Promise<{ ms: number }> {
  if (!discovery) throw new Error('not initialized');
  const started = now();
  if (mode === 'floor') {
    for (const key of keys) {
      floorLoop(key).catch((error: unknown) => {
        if (!stopped) console.error(`floor ${key}:`, error);
      });
    }
  } else if (mode === 'prefix') {
    subscriptions.push(
      discovery.leaders(prefix).subscribe((leaders) => {
        emissions += 1;
        leading = leaders.size;
      }),
    );
  } else {
    for (const key of keys) {
      let had = false;
      subscriptions.push(
        discovery.leader(key).subscribe((leader) => {
          emissions += 1;
          if (leader !== null && !had) leading += 1;
          if (leader === null && had) leading -= 1;
          had = leader !== null;
        }),
      );
    }
  }
  const deadline = started + FOLLOW_TIMEOUT_MS;
  while (leading < keys.length) {
    if (now() > deadline) throw new Error(`only ${leading} of ${keys.length} keys have a leader`);
    await sleep(10);
  }
  return { ms: now() - started };
}

async function handle(request: IdleRequest): Promise<unknown> {
  switch (request.type) {
    case 'init':
      mode = request.mode;
      target = request.proxy;
      wait = request.wait;
      prefix = request.prefix;
      keys = request.keys;
      discovery = createLeaderDiscovery({
        consul: {
          host: request.proxy.host,
          port: request.proxy.port,
          ...(request.ca === undefined ? {} : { secure: true, ca: request.ca }),
        },
        wait: request.wait,
        ...(request.mode === 'coalesced' || request.mode === 'prefix' ? {} : { coalesce: false }),
        ...(request.mode === 'per-key-h2' ? { http2: true } : {}),
      });
      return settledMemory();
    case 'follow':
      return follow();
    case 'begin': {
      const slices: number[] = [];
      let last = process.cpuUsage();
      const timer = setInterval(() => {
        const used = process.cpuUsage(last);
        last = process.cpuUsage();
        slices.push((used.user + used.system) / 1000);
      }, SLICE_MS);
      window = {
        cpu: process.cpuUsage(),
        elu: performance.eventLoopUtilization(),
        emissions,
        at: now(),
        slices,
        timer,
      };
      return null;
    }
    case 'end': {
      if (!window) throw new Error('no window begun');
      clearInterval(window.timer);
      const cpu = process.cpuUsage(window.cpu);
      const elu = performance.eventLoopUtilization(window.elu);
      const result: Omit<IdleWindow, 'memory'> = {
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        cpuSlicesMs: window.slices,
        sliceMs: SLICE_MS,
        eventLoopUtilization: elu.utilization,
        emissions: emissions - window.emissions,
        durationMs: now() - window.at,
        rssBeforeGc: process.memoryUsage().rss,
      };
      return { ...result, memory: await settledMemory() } satisfies IdleWindow;
    }
    case 'exit':
      return null;
  }
}

serveParent<IdleRequest>(handle, async () => {
  stopped = true;
  floorAgent.destroy();
  for (const subscription of subscriptions) subscription.unsubscribe();
  discovery?.close();
});
