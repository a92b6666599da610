/** The rate limit of wake-ups that bring nothing new (a public option; its own module, so the
 * public types import no transport). */
export interface IdleWakeupLimit {
  /** Wake-ups with nothing new allowed back to back. Default 5. */
  readonly burst: number;
  /** Sustained rate of wake-ups with nothing new, per second. Default 2. */
  readonly perSecond: number;
}
