/**
 * Entry of a case 3 watcher thread: follows the keys of one prefix at a time
 * (on `follow`, until `unfollow`) with the floor (floor.ts) or the SDK
 * (`leaders(prefix)`, or one `leader(key)` per key, on a new
 * `createLeaderDiscovery` each time: over plain HTTP, maybe with
 * `splitPrefixes: { http1: true }`, or over HTTPS with `http2: true`), posts
 * what changed with its timestamp (`now()` of bench/clock.ts, in this thread),
 * answers clock pings and usage queries (CPU, and the HTTP/2 streams the SDK
 * opened: h2-streams.ts), and stops on request (bench/thread.ts). Loaded
 * through tsx by threads.ts.
 */
import { workerData } from 'node:worker_threads';
import type { Subscription } from 'rxjs';
import type * as Sdk from '@consul-leader/discovery';
import { now } from '../clock.js';
import { threadTimes } from '../latency/thread-times.js';
import { threadPort } from '../thread.js';
import { startPrefixFloor } from './floor.js';
import { countHttp2Streams } from './h2-streams.js';
import {
  type FollowOrder,
  type FromManyKeysWatcher,
  type KeyView,
  type ManyKeysUsage,
  type ManyKeysWatcherInit,
  type StreamCounts,
  type ToManyKeysWatcher,
  keyOf,
} from './protocol.js';

const { post, fail, serve } = threadPort<FromManyKeysWatcher, ManyKeysUsage>('bench/many-keys/worker.ts');
const init = workerData as ManyKeysWatcherInit;

const tagOf = (node: unknown): string | null =>
  typeof node === 'object' && node !== null && 'tag' in node && typeof node.tag === 'string'
    ? node.tag
    : null;

const NO_STREAMS: StreamCounts = { kv: 0, session: 0, all: 0, kvOpen: 0, kvOpenPaths: [] };
// Before the SDK is loaded: it must find the wrapped `http2.connect`.
const streams = init.role === 'sdk' ? countHttp2Streams() : () => NO_STREAMS;
const sdk: typeof Sdk | undefined =
  init.role === 'sdk' ? await import(init.sdk ?? '@consul-leader/discovery') : undefined;

/** Starts following `order`; returns how to stop. */
function follow({ kind, host, port: consulPort, prefix, size, http2, http1Split }: FollowOrder): () => void {
  const keys = Array.from({ length: size }, (_, i) => keyOf(prefix, i));
  // Views are posted in one message per turn of the event loop (a first load reports every key).
  let pending: KeyView[] = [];
  let unreported: Set<string> | undefined = new Set(keys);
  let started = now();
  let stopped = false;
  const flush = (): void => {
    if (stopped || pending.length === 0) return;
    post({ type: 'views', views: pending });
    pending = [];
    if (unreported?.size === 0) {
      unreported = undefined;
      post({ type: 'ready', firstLoadMs: now() - started });
    }
  };
  const report = (key: string, tag: string | null, at = now()): void => {
    if (pending.length === 0) queueMicrotask(flush);
    pending.push([key, tag, at]);
    unreported?.delete(key);
  };

  if (kind === 'floor') {
    const floor = startPrefixFloor({ host, port: consulPort, prefix, report, flush, fail });
    return () => {
      stopped = true;
      floor.stop();
    };
  }
  if (!sdk) throw new Error(`a floor thread cannot follow with ${kind}`);
  const discovery = sdk.createLeaderDiscovery(
    http2
      ? {
          consul: { host, port: consulPort, secure: true, ca: http2.ca },
          http2: true,
          ...(http2.split ? {} : { splitPrefixes: false }),
        }
      : {
          consul: { host, port: consulPort },
          ...(http1Split === true ? { splitPrefixes: { http1: true } } : {}),
        },
  );
  const subscriptions: Subscription[] = [];
  started = now();
  if (kind === 'leaders(prefix)') {
    // The map has the keys that have a leader; what changed is found by comparing with the last one.
    const lastLeader = new Map<string, Sdk.Leader<unknown> | undefined>();
    const lastTag = new Map<string, string | null>();
    subscriptions.push(
      discovery.leaders(prefix).subscribe((leaders) => {
        const at = now();
        for (const key of keys) {
          const leader = leaders.get(key);
          if (lastTag.has(key) && lastLeader.get(key) === leader) continue;
          lastLeader.set(key, leader);
          const tag = leader ? tagOf(leader.node) : null;
          if (lastTag.has(key) && lastTag.get(key) === tag) continue;
          lastTag.set(key, tag);
          report(key, tag, at);
        }
      }),
    );
  } else {
    for (const key of keys) {
      subscriptions.push(
        discovery.leader(key).subscribe((leader) => report(key, leader ? tagOf(leader.node) : null)),
      );
    }
  }
  return () => {
    stopped = true;
    for (const subscription of subscriptions) subscription.unsubscribe();
    discovery.close();
  };
}

let unfollow: (() => void) | undefined;
const stopFollowing = (): void => {
  try {
    unfollow?.();
  } catch (error) {
    fail(error);
  }
  unfollow = undefined;
};

serve<ToManyKeysWatcher>({
  usage: () => ({ ...threadTimes(), streams: streams() }),
  stop: stopFollowing,
  receive: (message) => {
    switch (message.type) {
      case 'follow':
        stopFollowing();
        try {
          unfollow = follow(message);
        } catch (error) {
          fail(error);
        }
        return;
      case 'unfollow':
        stopFollowing();
        post({ type: 'unfollowed' });
        return;
    }
  },
});
post({ type: 'loaded' });
