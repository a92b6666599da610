/** What the routing case's parent and its child processes (backends, load generator, proxies) say to each other. */

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** Every `at` below is `now()` (bench/clock.ts) in the process that took it; the parent corrects by the measured offset. */

// ---- a backend: a node:http server that campaigns for a key and answers only while it leads

export interface BackendStart {
  readonly type: 'start';
  readonly consul: Address;
  readonly key: string;
  readonly name: string;
  readonly ttl: string;
  readonly lockDelay: string;
}

export type BackendRequest =
  | BackendStart
  /** Resolves once it leads (at once if it does), or null after `timeoutMs` or a `cancelWaits`. */
  | { readonly type: 'waitLeader'; readonly timeoutMs: number }
  | { readonly type: 'cancelWaits' }
  /** 421 from now on, releases the key, destroys its session; campaigns again after `rejoinAfterMs`. */
  | { readonly type: 'stepDown'; readonly rejoinAfterMs: number }
  | { readonly type: 'status' }
  | { readonly type: 'cpu' }
  | { readonly type: 'now' }
  | { readonly type: 'exit' };

export interface LeaderNews {
  readonly session: string;
  /** When its acquire succeeded (right before the successful PUT was written). */
  readonly at: number;
}

export interface SteppedDown {
  readonly session: string;
  /** From here on it answered 421. */
  readonly downAt: number;
  /** Right before the release PUT was written. */
  readonly releaseSentAt: number;
  readonly released: boolean;
}

export interface BackendStatus {
  readonly leader: boolean;
  readonly session: string | null;
  /** Right before its last session renewal (or the session's creation) was written. */
  readonly lastRenewalAt: number;
  /** Requests answered 200 (while leading) and 421 (not leading). */
  readonly served: number;
  readonly misdirected: number;
}

// ---- the load generator

/** Where a round's requests go: every kind is driven through undici's `request(url, { dispatcher })`. */
export type Target =
  /** A plain undici `Agent` straight to `url` (the leader's origin). */
  | { readonly kind: 'agent'; readonly url: string }
  /** `leaderDispatcher(handle, { origin })` on the handle of `key`. */
  | { readonly kind: 'dispatcher'; readonly key: string }
  /** An undici `Pool` to `origin` (a proxy). */
  | { readonly kind: 'pool'; readonly origin: string };

export type LoadRequest =
  | { readonly type: 'setup'; readonly sdk: string; readonly consul: Address }
  /** A handle on `key` (`discovery.follow`); resolves with its leader's session once it has one. */
  | { readonly type: 'follow'; readonly key: string }
  | { readonly type: 'unfollow'; readonly key: string }
  /** `requests` requests, `concurrency` in flight (closed loop). */
  | {
      readonly type: 'round';
      readonly target: Target;
      readonly concurrency: number;
      readonly requests: number;
    }
  /** Continuous load `id` through a new `leaderDispatcher` with `waitForLeader`, until its `loadStop`. */
  | {
      readonly type: 'loadStart';
      readonly id: string;
      readonly key: string;
      readonly concurrency: number;
      readonly waitForLeader: string;
    }
  | { readonly type: 'loadStop'; readonly id: string }
  | { readonly type: 'now' }
  | { readonly type: 'exit' };

export interface RoundResult {
  /** Milliseconds per request, from before `request()` to the end of its body. */
  readonly latencies: Float64Array;
  readonly durationMs: number;
  /** The load process's CPU (user + system, every thread) over the round. */
  readonly cpuUs: number;
  readonly failures: number;
}

/** The continuous load's requests, in the order they ended. */
export interface LoadRecords {
  readonly start: Float64Array;
  readonly end: Float64Array;
  /** 1: answered 200; 0: an error or another status. */
  readonly ok: Uint8Array;
  /** The first few failures' messages. */
  readonly errors: readonly string[];
  /** What the handle showed, from the load's start: its leader's session, or null. */
  readonly changes: readonly { readonly at: number; readonly session: string | null }[];
}

// ---- the proxies

export type ProxiesRequest =
  | {
      readonly type: 'start';
      readonly sdk: string;
      readonly consul: Address;
      readonly key: string;
      /** The minimal proxy's fixed upstream (the leader's address at the time). */
      readonly upstream: Address;
    }
  | { readonly type: 'cpu' }
  | { readonly type: 'exit' };

export interface ProxiesStarted {
  readonly plainOrigin: string;
  /** Null when the SDK build has no `createLeaderProxy`. */
  readonly sdkOrigin: string | null;
}
