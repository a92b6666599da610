/**
 * The failover tests' own records of the client's side, to hold against what the backends
 * logged: what the handle named and when the test saw it (HandleLog), and when each attempt's
 * bytes left toward which backend (observedPools).
 */
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import { type Dispatcher, Pool } from 'undici';
import type { LeaderHandle } from '@consul-leader/discovery';
import { idOf } from './routing-client.js';
import { type Node, originOf } from './routing-failover-setup.js';

export interface Named {
  readonly session: string | null;
  readonly origin: string | null;
  /** When the test saw it (`performance.now()`). */
  readonly at: number;
}

/**
 * Every value `handle.changes` showed, in order. The handle's own subscription to the shared
 * stream comes first: it sets `handle.current` and tells the dispatchers, then this one pushes
 * its entry in the same synchronous emission, so `at` is never before a dispatcher knew.
 */
export class HandleLog {
  readonly named: Named[] = [];
  private readonly subscription: Subscription;

  constructor(handle: LeaderHandle<Node>, onChange?: (entry: Named, named: readonly Named[]) => void) {
    this.subscription = handle.changes.subscribe((leader) => {
      const session = leader?.session.id ?? null;
      if (this.named.length > 0 && this.named[this.named.length - 1]?.session === session) return;
      const entry = { session, origin: leader ? originOf(leader) : null, at: performance.now() };
      this.named.push(entry);
      onChange?.(entry, this.named);
    });
  }

  /** The index of the entry naming what the handle names now (-1 before its first value). */
  latestIndex(): number {
    return this.named.length - 1;
  }

  /** The index of the entry naming `session`; -1 when the handle never named it. */
  indexOf(session: string): number {
    return this.named.findIndex((n) => n.session === session);
  }

  /** The origin the handle named with `session` (undefined when it never named it). */
  originOf(session: string): string | undefined {
    return this.named[this.indexOf(session)]?.origin ?? undefined;
  }

  /** When the test first saw the handle name something else than `session` (Infinity: not yet). */
  lostAt(session: string): number {
    const i = this.indexOf(session);
    return i < 0 ? -Infinity : (this.named[i + 1]?.at ?? Infinity);
  }

  sessions(): string[] {
    return this.named.flatMap((n) => (n.session === null ? [] : [n.session]));
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** One attempt that a pool put on a connection (the dispatcher's own last check passed). */
export interface Start {
  readonly id: string | null;
  readonly origin: string;
  readonly at: number;
  /** What the handle named at that moment. */
  readonly named: string | null;
  readonly namedOrigin: string | null;
}

/** Passes everything through; records the attempts whose bytes leave. */
class StartObserver implements Dispatcher.DispatchHandler {
  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly started: () => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(controller, context);
    // Not aborted here: undici writes the request to the socket right after this returns.
    if (!controller.aborted) this.started();
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>): void {
    this.inner.onRequestUpgrade?.(...args);
  }

  onResponseStart(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>): void {
    this.inner.onResponseStart?.(...args);
  }

  onResponseData(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>): void {
    this.inner.onResponseData?.(...args);
  }

  onResponseEnd(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>): void {
    this.inner.onResponseEnd?.(...args);
  }

  onResponseError(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseError']>>): void {
    this.inner.onResponseError?.(...args);
  }
}

/**
 * The default pool of a dispatcher or proxy (`new Pool(origin)`), observed: the backends log
 * when a request arrived, but only the client side can tell when its bytes left, which is
 * what "sent after the loss was seen" is about.
 */
export function observedPools(handle: LeaderHandle<Node>, starts: Start[]): (origin: string) => Dispatcher {
  return (origin) =>
    new Pool(origin).compose(
      (dispatch) => (options, handler) =>
        dispatch(
          options,
          new StartObserver(handler, () => {
            const leader = handle.current;
            starts.push({
              id: idOf(options.path),
              origin,
              at: performance.now(),
              named: leader?.session.id ?? null,
              namedOrigin: leader ? originOf(leader) : null,
            });
          }),
        ),
    );
}
