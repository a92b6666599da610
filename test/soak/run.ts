/**
 * A soak's run, the same in both soaks: writers at full speed while
 * subscribers join and leave on a schedule counted in writes; then every
 * subscriber subscribed, until each agrees with Consul's final state; then a
 * quiet period in which nothing more may arrive.
 */
import { delay } from '../support/recorder.js';
import { until } from './harness.js';
import type { SoakWriter } from './writer.js';

/** How long the subscribers have to agree with Consul after the last write. */
const CONVERGE_TIMEOUT_MS = 30_000;
/** The quiet period after they agree: nothing more may arrive. */
export const QUIET_MS = 1_000;

interface Joiner {
  subscribe(): void;
  unsubscribe(): void;
}

/** What happens at which write: subscribers joining, leaving, coming back; and after the last write. */
export class Schedule {
  private readonly atWrite = new Map<number, (() => void)[]>();
  private readonly afterWrites: (() => void)[] = [];

  constructor(
    /** The writes of the run. */
    private readonly writes: number,
    private readonly random: () => number,
    /** A subscriber that comes and goes leaves within 1/`leaveWithin` of the writes left. */
    private readonly leaveWithin: number,
  ) {}

  at(write: number, action: () => void): void {
    const list = this.atWrite.get(write) ?? [];
    list.push(action);
    this.atWrite.set(write, list);
  }

  /** Once the writes are over. */
  afterLastWrite(action: () => void): void {
    this.afterWrites.push(action);
  }

  /** A write at random within the first `share` of the run. */
  randomWrite(share: number): number {
    return 1 + Math.floor(this.random() * Math.max(1, this.writes * share));
  }

  /** After write `from`, leaves and comes back up to `cycles` times, back before the last write. */
  comesAndGoes(subscriber: Joiner, from: number, cycles: number): void {
    let cursor = from;
    for (let c = 0; c < cycles; c += 1) {
      const leave =
        cursor + 1 + Math.floor(this.random() * Math.max(1, (this.writes - cursor) / this.leaveWithin));
      const back = leave + 1 + Math.floor(this.random() * Math.max(1, (this.writes - leave) / 4));
      if (back >= this.writes) break;
      this.at(leave, () => subscriber.unsubscribe());
      this.at(back, () => subscriber.subscribe());
      cursor = back;
    }
  }

  /** Write `write` is acknowledged: what happens then. */
  reached(write: number): void {
    for (const action of this.atWrite.get(write) ?? []) action();
    this.atWrite.delete(write);
  }

  /** The writes are over: actions scheduled past the last write, then those after it. */
  finish(): void {
    for (const actions of this.atWrite.values()) for (const action of actions) action();
    for (const action of this.afterWrites) action();
  }
}

interface Follower extends Joiner {
  readonly emissions: number;
}

export interface RunSpec<S extends Follower, F> {
  readonly writers: readonly SoakWriter[];
  /** One writer's writes, at full speed; calls `schedule.reached()` as they are acknowledged. */
  write(writer: SoakWriter, index: number): Promise<void>;
  readonly schedule: Schedule;
  /** Every subscriber: each is subscribed once the writes are over. */
  readonly subscribers: readonly S[];
  /** Consul's final state, read directly. */
  readFinal(): Promise<F>;
  /** Why a subscriber's last emission differs from Consul's final state, or null when it agrees. */
  mismatch(subscriber: S, final: F): string | null;
}

export interface Run<S, F> {
  readonly final: F;
  /** From the first write until the last write's ack. */
  readonly writeSeconds: number;
  /** Every subscriber agreed with Consul's final state before the deadline. */
  readonly converged: boolean;
  /** From the last write's ack until every subscriber agreed with Consul. */
  readonly convergeSeconds: number;
  /** From the first write until the end of the quiet period. */
  readonly totalSeconds: number;
  /** Subscribers that still received something during the quiet period. */
  readonly late: readonly S[];
}

export async function writeAndSettle<S extends Follower, F>(spec: RunSpec<S, F>): Promise<Run<S, F>> {
  const { writers, schedule, subscribers } = spec;
  const started = performance.now();
  await Promise.all(writers.map((writer, index) => spec.write(writer, index)));
  const writesDone = performance.now();
  const writeSeconds = (writesDone - started) / 1000;
  for (const writer of writers) await writer.dropIdleSessions();
  schedule.finish();
  for (const subscriber of subscribers) subscriber.subscribe();

  const final = await spec.readFinal();
  const converged = await until(
    () => subscribers.every((s) => spec.mismatch(s, final) === null),
    CONVERGE_TIMEOUT_MS,
  );
  const convergeSeconds = (performance.now() - writesDone) / 1000;
  // Quiet period: nothing more may arrive, and everyone still agrees with Consul.
  const emissionsBefore = subscribers.map((s) => s.emissions);
  await delay(QUIET_MS);
  const totalSeconds = (performance.now() - started) / 1000;
  const late = subscribers.filter((s, i) => s.emissions !== emissionsBefore[i]);
  return { final, writeSeconds, converged, convergeSeconds, totalSeconds, late };
}
