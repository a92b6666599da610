/** What the idle case's parent and its follower process say to each other. */
import type { Address } from '../fanout/protocol.js';

/**
 * `per-key`: one `leader(key)` per key with `coalesce: false` (one blocking query each);
 * `coalesced`: one `leader(key)` per key with the default options (from 32 keys of a
 * prefix, one recursive query serves them all); `prefix`: one `leaders(prefix)`;
 * `floor`: no SDK, a bare-http loop of blocking reads per key (the reference);
 * `per-key-tls`: `per-key` against an HTTPS agent (HTTP/1.1); `per-key-h2`: the same with `http2: true`.
 */
export type IdleMode = 'per-key' | 'coalesced' | 'prefix' | 'floor' | 'per-key-tls' | 'per-key-h2';

/** The modes that read an HTTPS agent. */
export const TLS_MODES: ReadonlySet<IdleMode> = new Set(['per-key-tls', 'per-key-h2']);

export type IdleRequest =
  | {
      readonly type: 'init';
      readonly proxy: Address;
      /** As the SDK's option (a Go duration). */
      readonly wait: string;
      readonly mode: IdleMode;
      readonly prefix: string;
      readonly keys: readonly string[];
      /** For the TLS modes: the CA (PEM) that signed the agent's certificate. */
      readonly ca?: string;
    }
  /** Subscribes; answers once every key has its leader. */
  | { readonly type: 'follow' }
  /** Starts the measured window. */
  | { readonly type: 'begin' }
  /** Ends it: CPU time and emissions since `begin`, then memory after full collections. */
  | { readonly type: 'end' }
  | { readonly type: 'exit' };

export interface IdleMemory {
  readonly heapUsed: number;
  readonly rss: number;
}

export interface IdleWindow {
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** CPU time (user + system, ms) of each full `sliceMs` of the window. */
  readonly cpuSlicesMs: readonly number[];
  readonly sliceMs: number;
  /** Event-loop utilization over the window (0..1). */
  readonly eventLoopUtilization: number;
  /** Emissions over the window (nothing changed: expect 0). */
  readonly emissions: number;
  readonly durationMs: number;
  /** RSS at the end of the window, before any collection. */
  readonly rssBeforeGc: number;
  /** After full collections. */
  readonly memory: IdleMemory;
}
