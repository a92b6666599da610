/** What case 3's main thread and its watcher threads (floor, SDK) say to each other. */

/**
 * `floor`: a bare `http` loop on the prefix's recursive blocking query
 * (floor.ts); the other two: one `createLeaderDiscovery`, followed through
 * `leaders(prefix)` or through one `leader(key)` per key.
 */
export type ManyKeysWatcherKind = 'floor' | 'leaders(prefix)' | 'leader(key) per key';

/** `workerData` of a watcher thread: one thread follows one prefix after another. */
export interface ManyKeysWatcherInit {
  /** `floor` or `sdk`: what the thread can follow with. */
  readonly role: 'floor' | 'sdk';
  /** Where to import `@consul-leader/discovery` from (bench/sdk-snapshot.ts); the package itself if absent. */
  readonly sdk?: string;
}

/**
 * An SDK watcher's way to an HTTPS agent: `http2: true`, and `splitPrefixes`
 * left to its default (`split`) or `false` (one recursive query).
 */
export interface Http2Order {
  /** PEM of the CA that signed the agent's certificate. */
  readonly ca: string;
  readonly split: boolean;
}

/** What to follow: the keys are `keyOf(prefix, i)` for i in [0, size). */
export interface FollowOrder {
  readonly kind: ManyKeysWatcherKind;
  /** The Consul HTTP API the watcher reads from (its counting proxy, or a TCP pass-through with `http2`). */
  readonly host: string;
  readonly port: number;
  readonly prefix: string;
  readonly size: number;
  /** Over HTTPS with `http2: true` (SDK only); plain HTTP without. */
  readonly http2?: Http2Order;
  /**
   * Plain HTTP only (SDK only): `splitPrefixes: { http1: true }`, a big prefix
   * as sub-prefix queries on a connection each; without it the default
   * `splitPrefixes`, which over plain HTTP keeps the prefix's one recursive query.
   */
  readonly http1Split?: boolean;
}

/**
 * HTTP/2 streams the thread's SDK opened so far, by path (counted where they
 * are opened: a TCP pass-through cannot see them inside TLS), and its KV
 * streams open now. All 0 in a floor thread, or over HTTP/1.1.
 */
export interface StreamCounts {
  readonly kv: number;
  readonly session: number;
  readonly all: number;
  readonly kvOpen: number;
  /** The `:path` of each of those (`/v1/kv/<key, URI-encoded>?<query>`). */
  readonly kvOpenPaths: readonly string[];
}

/** A watcher thread's usage answer: its CPU time and run-queue wait (ms), and its HTTP/2 streams. */
export interface ManyKeysUsage {
  readonly cpuMs: number;
  readonly runQueueMs: number;
  readonly streams: StreamCounts;
}

export const keyOf = (prefix: string, i: number): string => `${prefix}s${i}/leader`;

/** A key's leader as a watcher sees it: the `tag` of its value, or null with no leader; `at` is `now()` in the watcher's thread. */
export type KeyView = readonly [key: string, tag: string | null, at: number];

/** What a watcher thread posts besides the messages of every thread (bench/thread.ts). */
export type FromManyKeysWatcher =
  /** Its modules are loaded: it follows on `follow`. */
  | { readonly type: 'loaded' }
  /** What changed, batched per turn of the watcher's event loop. */
  | { readonly type: 'views'; readonly views: readonly KeyView[] }
  /** Every key has been reported once: `firstLoadMs` after the watcher started reading. */
  | { readonly type: 'ready'; readonly firstLoadMs: number }
  /** It stopped following (sockets closed); no more views of that prefix. */
  | { readonly type: 'unfollowed' };

/** What a watcher thread answers besides the messages of every thread. */
export type ToManyKeysWatcher = ({ readonly type: 'follow' } & FollowOrder) | { readonly type: 'unfollow' };
