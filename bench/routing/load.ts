/**
 * The routing case's load generator, in a process of its own (bench/child.ts, plain
 * JavaScript), so that its CPU is its own: closed-loop rounds (a fixed number of requests,
 * a fixed number in flight) through a plain undici `Agent`, a `leaderDispatcher`, or an
 * undici `Pool` to a proxy; and a continuous load through a `leaderDispatcher` for the
 * failover part. Every request is undici's `request(url, { dispatcher })` with its body read
 * as text. The SDK comes from the run's snapshot (bench/sdk-snapshot.ts), undici from the
 * repository (the one the SDK resolves too).
 */
import { Agent, type Dispatcher, Pool, request } from 'undici';
import type { Subscription } from 'rxjs';
import type * as Sdk from '@consul-leader/discovery';
import type * as SdkHttp from '@consul-leader/discovery/http';
import { now } from '../clock.js';
import { serveParent } from '../in-child.js';
import type { LoadRecords, LoadRequest, RoundResult, Target } from './protocol.js';

const FOLLOW_TIMEOUT_MS = 20_000;
const KEPT_ERRORS = 5;

interface Followed {
  readonly handle: Sdk.LeaderHandle<unknown>;
  readonly changes: { at: number; session: string | null }[];
  readonly subscription: Subscription;
  dispatcher?: Dispatcher;
}

let discovery: Sdk.LeaderDiscovery | undefined;
let sdkHttp: typeof SdkHttp | undefined;
const followed = new Map<string, Followed>();
const plain = new Agent();
const pools = new Map<string, Pool>();

/** The leader's origin, from the descriptor the backends write: `{ host, port, name }`. */
function origin(leader: Sdk.Leader<unknown>): string {
  const node = leader.node as { host: string; port: number };
  return `http://${node.host}:${node.port}`;
}

function followedOf(key: string): Followed {
  const entry = followed.get(key);
  if (!entry) throw new Error(`${key}: not followed`);
  return entry;
}

async function follow(key: string): Promise<string> {
  if (!discovery) throw new Error('not set up');
  const handle = discovery.follow(key);
  const changes: Followed['changes'] = [];
  const subscription = handle.changes.subscribe((leader) =>
    changes.push({ at: now(), session: leader?.session.id ?? null }),
  );
  followed.set(key, { handle, changes, subscription });
  await handle.ready();
  const deadline = now() + FOLLOW_TIMEOUT_MS;
  while (!handle.current) {
    if (now() > deadline) throw new Error(`${key}: no leader within ${FOLLOW_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return handle.current.session.id;
}

async function unfollow(key: string): Promise<void> {
  const entry = followed.get(key);
  if (!entry) return;
  followed.delete(key);
  await entry.dispatcher?.close();
  entry.subscription.unsubscribe();
  entry.handle.close();
}

/** The dispatcher and URL of a target; made on first use, kept for the later rounds. */
function resolve(target: Target): { dispatcher: Dispatcher; url: string } {
  switch (target.kind) {
    case 'agent':
      return { dispatcher: plain, url: target.url };
    case 'dispatcher': {
      const entry = followedOf(target.key);
      entry.dispatcher ??= (sdkHttp as typeof SdkHttp).leaderDispatcher(entry.handle, { origin });
      return { dispatcher: entry.dispatcher, url: 'http://leader.invalid/' };
    }
    case 'pool': {
      let pool = pools.get(target.origin);
      if (!pool) {
        pool = new Pool(target.origin);
        pools.set(target.origin, pool);
      }
      return { dispatcher: pool, url: `${target.origin}/` };
    }
  }
}

/** One request: resolves true when answered 200 (body read), false otherwise; throws on an error. */
async function once(url: string, dispatcher: Dispatcher): Promise<boolean> {
  const { statusCode, body } = await request(url, { dispatcher });
  await body.text();
  return statusCode === 200;
}

async function round(target: Target, concurrency: number, total: number): Promise<RoundResult> {
  const { dispatcher, url } = resolve(target);
  const latencies = new Float64Array(total);
  let next = 0;
  let failures = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      const i = next;
      next += 1;
      const started = performance.now();
      try {
        if (!(await once(url, dispatcher))) failures += 1;
      } catch {
        failures += 1;
      }
      latencies[i] = performance.now() - started;
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, lane));
  const durationMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { latencies, durationMs, cpuUs: used.user + used.system, failures };
}

// ---- continuous load

interface Running {
  readonly stop: () => Promise<LoadRecords>;
  /** Fails the requests in flight (those waiting for a leader included) and ends the lanes. */
  readonly abort: () => Promise<void>;
}

const running = new Map<string, Running>();

function startLoad(id: string, key: string, concurrency: number, waitForLeader: string): void {
  if (running.has(id)) throw new Error(`load ${id} is already running`);
  const entry = followedOf(key);
  const dispatcher = (sdkHttp as typeof SdkHttp).leaderDispatcher(entry.handle, { origin, waitForLeader });
  const url = 'http://leader.invalid/';
  const from = entry.changes.length;
  const start: number[] = [];
  const end: number[] = [];
  const ok: number[] = [];
  const errors: string[] = [];
  let stopping = false;
  const record = (at: number, good: boolean, error?: unknown): void => {
    start.push(at);
    end.push(now());
    ok.push(good ? 1 : 0);
    if (!good && errors.length < KEPT_ERRORS) {
      const cause = (error as { cause?: unknown } | undefined)?.cause;
      errors.push(
        error === undefined
          ? 'an answer other than 200'
          : `${String(error)}${cause === undefined ? '' : ` (cause: ${String(cause)})`}`,
      );
    }
  };
  const lane = async (): Promise<void> => {
    while (!stopping) {
      const at = now();
      try {
        record(at, await once(url, dispatcher));
      } catch (error) {
        record(at, false, error);
      }
    }
  };
  const lanes = Promise.all(Array.from({ length: concurrency }, lane));
  running.set(id, {
    async stop() {
      stopping = true;
      await lanes;
      await dispatcher.close();
      running.delete(id);
      return {
        start: Float64Array.from(start),
        end: Float64Array.from(end),
        ok: Uint8Array.from(ok),
        errors,
        changes: entry.changes.slice(from),
      };
    },
    async abort() {
      stopping = true;
      await dispatcher.destroy();
      await lanes;
      running.delete(id);
    },
  });
}

async function handle(request: LoadRequest): Promise<unknown> {
  switch (request.type) {
    case 'setup': {
      const sdk = (await import(request.sdk)) as typeof Sdk;
      sdkHttp = (await import(new URL('./http/index.js', request.sdk).href)) as typeof SdkHttp;
      discovery = sdk.createLeaderDiscovery({ consul: request.consul });
      return null;
    }
    case 'follow':
      return follow(request.key);
    case 'unfollow':
      await unfollow(request.key);
      return null;
    case 'round':
      return round(request.target, request.concurrency, request.requests);
    case 'loadStart':
      startLoad(request.id, request.key, request.concurrency, request.waitForLeader);
      return null;
    case 'loadStop': {
      const load = running.get(request.id);
      if (!load) throw new Error(`no load ${request.id} running`);
      return load.stop();
    }
    case 'now':
      return now();
    case 'exit':
      return null;
  }
}

serveParent<LoadRequest>(handle, async () => {
  await Promise.all([...running.values()].map((load) => load.abort()));
  for (const key of [...followed.keys()]) await unfollow(key);
  await Promise.all([plain.close(), ...[...pools.values()].map((pool) => pool.close())]);
  discovery?.close();
});
