/**
 * A connection pool per origin. Once an origin stops being the leader's its pool is closed:
 * its idle keep-alive connections end at once and the requests on it finish, so no new
 * request reuses a socket to a leader that lost.
 */
import type { Dispatcher } from 'undici';

export class OriginPools {
  private readonly pools = new Map<string, Dispatcher>();
  /** Pools closing: their last requests are finishing. */
  private readonly closing = new Map<Dispatcher, Promise<void>>();

  constructor(private readonly factory: (origin: string) => Dispatcher) {}

  /** The pool of `origin`, made on first use. */
  get(origin: string): Dispatcher {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = this.factory(origin);
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes every pool but `origin`'s (all of them for undefined). */
  keepOnly(origin: string | undefined): void {
    for (const [other, pool] of this.pools) {
      if (other === origin) continue;
      this.pools.delete(other);
      this.track(pool);
    }
  }

  /** Closes every pool, letting the requests on them finish. */
  async close(): Promise<void> {
    this.keepOnly(undefined);
    await Promise.all(this.closing.values());
  }

  /** Destroys every pool, the requests on them included. */
  async destroy(error?: Error): Promise<void> {
    const pools = [...this.pools.values(), ...this.closing.keys()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy(error ?? null).catch(() => undefined)));
  }

  private track(pool: Dispatcher): void {
    // A pool that fails to close has nothing left to give: its error must not go unhandled.
    const closed = pool
      .close()
      .catch(() => undefined)
      .finally(() => this.closing.delete(pool));
    this.closing.set(pool, closed);
  }
}
