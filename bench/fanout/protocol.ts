/** What the fan-out case's parent and its subscriber process say to each other. */

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** `shared`: every subscriber subscribes to one `leader(key)`; `separate`: each calls `leader(key)` itself. */
export type FanoutMode = 'shared' | 'separate';

export type FanoutRequest =
  /** The SDK reads through `proxy`; the writer writes to `agent` directly. */
  | { readonly type: 'init'; readonly proxy: Address; readonly agent: Address; readonly key: string }
  /** Heap and RSS after full collections. */
  | { readonly type: 'memory' }
  | { readonly type: 'subscribe'; readonly subscribers: number; readonly mode: FanoutMode }
  /** Makes the next change, waits for every subscriber (or `timeoutMs`), then `gapMs`. */
  | { readonly type: 'change'; readonly timeoutMs: number; readonly gapMs: number }
  | { readonly type: 'unsubscribe' }
  | { readonly type: 'exit' };

export interface Memory {
  readonly heapUsed: number;
  readonly rss: number;
}

export interface ChangeOutcome {
  readonly seq: number;
  readonly kind: 'acquire' | 'release';
  /** `now()` right before the PUT was written. */
  readonly sentAt: number;
  /** When the first and the last subscriber saw the change; null if none / not all did. */
  readonly firstAt: number | null;
  readonly lastAt: number | null;
  /** Subscribers that saw it. */
  readonly seen: number;
  /** Emissions received by all subscribers from the PUT to the end of the gap. */
  readonly emissions: number;
  /** The process's CPU time (user + system) over the same span. */
  readonly cpuMs: number;
}
