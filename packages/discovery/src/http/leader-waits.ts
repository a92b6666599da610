/** Requests waiting for a leader, woken by the handle's changes (no timer polls, no subscription). */
import type { Leader } from '@consul-leader/types';

interface Waiter<T> {
  readonly other: string | undefined;
  readonly found: (leader: Leader<T>) => void;
  readonly ended: (why: 'expired' | 'closed') => void;
  timer?: ReturnType<typeof setTimeout>;
}

export class LeaderWaits<T> {
  private readonly waiting = new Set<Waiter<T>>();
  private closed = false;

  /**
   * Calls `found` with the first leader whose session is not `other`, or `ended` after `ms`
   * (or at once when closed). Returns the function that cancels the wait.
   */
  wait(
    other: string | undefined,
    ms: number,
    found: (leader: Leader<T>) => void,
    ended: (why: 'expired' | 'closed') => void,
  ): () => void {
    if (this.closed) {
      ended('closed');
      return () => undefined;
    }
    if (ms <= 0) {
      ended('expired');
      return () => undefined;
    }
    const waiter: Waiter<T> = { other, found, ended };
    waiter.timer = setTimeout(() => {
      this.waiting.delete(waiter);
      ended('expired');
    }, ms);
    this.waiting.add(waiter);
    return () => this.forget(waiter);
  }

  /** The handle's new leader: wakes whoever waits for it. */
  change(leader: Leader<T> | null): void {
    if (leader === null) return;
    for (const waiter of [...this.waiting]) {
      if (waiter.other === leader.session.id) continue;
      this.forget(waiter);
      waiter.found(leader);
    }
  }

  /** Nothing follows the key any more: every wait ends now, and each later one at once. */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiting]) {
      this.forget(waiter);
      waiter.ended('closed');
    }
  }

  private forget(waiter: Waiter<T>): void {
    clearTimeout(waiter.timer);
    this.waiting.delete(waiter);
  }
}
