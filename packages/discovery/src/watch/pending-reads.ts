/**
 * The reads that join a blocking query's answer (session info), so that the
 * query's next read waits for them: a followed key then needs one connection,
 * not two, and Consul answers the join without setting up the next blocking
 * read at the same time (case 1 of BENCHMARKS.md measured the join finishing
 * sooner). A change made meanwhile is not lost: the next read carries the index.
 */
export class PendingReads {
  readonly #pending = new Set<Promise<unknown>>();

  /** Tracks `read` until it settles; returns it unchanged. */
  track<T>(read: Promise<T>): Promise<T> {
    const tracked = read.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(tracked);
    void tracked.then(() => this.#pending.delete(tracked));
    return read;
  }

  /** undefined when no read is pending (no wait at all), else resolves once every pending read settled. */
  settled(): Promise<void> | undefined {
    if (this.#pending.size === 0) return undefined;
    return Promise.all(this.#pending).then(() => undefined);
  }
}
