/**
 * `leaderDispatcher(handle, options)`: an undici Dispatcher that sends every request to the
 * leader the handle names (the request's own origin is replaced). Works with `fetch` and
 * `request` of the `undici` package, Node's global `fetch`, and anything taking a Dispatcher.
 */
import { Dispatcher, Pool } from 'undici';
import type { Leader } from '@consul-leader/types';
import { DiscoveryClosedError } from '../errors.js';
import { type LeaderHandle, listenToHandle } from '../state/follow-handle.js';
import { modernHandler } from './handlers.js';
import { LeaderWaits } from './leader-waits.js';
import { type LeaderDispatcherOptions, type RoutingSettings, routingSettings } from './options.js';
import { OriginPools } from './origin-pools.js';
import { RoutedRequest, type Routing } from './routed-request.js';

/** An undici Dispatcher routing to the handle's leader. */
export interface LeaderDispatcher<T> extends Dispatcher {
  /** The handle it routes with. Closing the handle ends the routing (requests then fail). */
  readonly handle: LeaderHandle<T>;
}

/** The origin of `leader`, checked: an http(s) URL's origin. */
function checkedOrigin(value: string | URL): string {
  const url = typeof value === 'string' ? new URL(value) : value;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`expected an http: or https: origin, got ${JSON.stringify(url.protocol)}`);
  }
  return url.origin;
}

class RoutingDispatcher<T> extends Dispatcher implements LeaderDispatcher<T>, Routing<T> {
  readonly settings: RoutingSettings;
  readonly waits = new LeaderWaits<T>();
  readonly pools: OriginPools;
  private readonly origins = new WeakMap<Leader<T>, string>();
  private readonly stopListening: () => void;
  private closed = false;

  constructor(
    readonly handle: LeaderHandle<T>,
    private readonly options: LeaderDispatcherOptions<T>,
  ) {
    super();
    this.settings = routingSettings(options as LeaderDispatcherOptions<unknown>);
    this.pools = new OriginPools(options.factory ?? ((origin) => new Pool(origin)));
    this.stopListening = listenToHandle(handle, {
      change: (leader) => {
        // The pools of any other origin close now: no idle socket to a lost leader is reused.
        let origin: string | undefined;
        try {
          origin = leader ? this.originOf(leader) : undefined;
        } catch {
          origin = undefined; // requests to it fail with the reason; no pool is kept meanwhile
        }
        this.pools.keepOnly(origin);
        this.waits.change(leader);
      },
      closed: () => {
        this.waits.close();
        this.pools.keepOnly(undefined);
      },
    });
  }

  originOf(leader: Leader<T>): string {
    let origin = this.origins.get(leader);
    if (origin === undefined) {
      origin = checkedOrigin(this.options.origin(leader));
      this.origins.set(leader, origin);
    }
    return origin;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const request = new RoutedRequest(this, options, modernHandler(handler));
    if (this.closed) {
      request.abort(new DiscoveryClosedError());
      return false;
    }
    request.start();
    return true;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const closed = this.shutDown(() => this.pools.close());
    if (!callback) return closed;
    void closed.then(callback);
  }

  override destroy(error?: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(first?: Error | null | (() => void), second?: () => void): Promise<void> | void {
    const error = typeof first === 'function' ? null : (first ?? null);
    const callback = typeof first === 'function' ? first : second;
    const destroyed = this.shutDown(() => this.pools.destroy(error ?? undefined));
    if (!callback) return destroyed;
    void destroyed.then(callback);
  }

  /** Stops taking requests and following the handle; requests waiting for a leader fail. */
  private shutDown(pools: () => Promise<void>): Promise<void> {
    this.closed = true;
    this.stopListening();
    this.waits.close();
    return pools();
  }
}

/**
 * An undici `Dispatcher` that sends each request to the leader `handle.current` names when
 * the request is handed to a connection: `fetch(url, { dispatcher })`, undici's `request`,
 * Node's global `fetch`. While there is no leader a request waits up to `waitForLeader`,
 * then fails with `NoLeaderError`; what may safely be sent again after the leader refused
 * it, or answered `notLeaderStatus` (421), goes to the next leader. Other failures are
 * `LeaderRequestError`s. `close()` it when done (the handle stays yours).
 */
export function leaderDispatcher<T>(
  handle: LeaderHandle<T>,
  options: LeaderDispatcherOptions<T>,
): LeaderDispatcher<T> {
  return new RoutingDispatcher(handle, options);
}
