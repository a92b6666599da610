/**
 * A token bucket: `burst` requests at once, then `perSecond` on average. It
 * throttles only wake-ups that brought nothing new, so a Consul or proxy that
 * answers at once without moving the index cannot make a watch spin.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes a token; returns how many ms to wait until it is really available (0 when at once). */
  take(): number {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.perSecond) * 1000);
  }
}
