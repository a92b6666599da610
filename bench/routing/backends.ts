/**
 * The parent's side of the routing case's child processes: the backends that campaign for
 * a key (bench/routing/backend.ts), and the clock offset of any child that answers `now`.
 */
import { ChildModule } from '../child.js';
import { now } from '../clock.js';
import type { SdkSnapshot } from '../sdk-snapshot.js';
import type { Address, BackendRequest, BackendStatus, LeaderNews, SteppedDown } from './protocol.js';

/** The child's clock minus this process's, from the ping with the shortest round trip. */
export async function clockOffset(
  ask: () => Promise<number>,
  rounds = 10,
): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < rounds; i += 1) {
    const sent = now();
    const at = await ask();
    const back = now();
    if (back - sent < best.rttMs) best = { rttMs: back - sent, offsetMs: at - (sent + back) / 2 };
  }
  return best;
}

export class Backend {
  readonly #child: ChildModule<BackendRequest>;
  #offsetMs = 0;
  #rttMs = 0;
  origin = '';
  port = 0;
  #killed = false;

  constructor(
    readonly name: string,
    sdk: SdkSnapshot,
  ) {
    this.#child = new ChildModule<BackendRequest>(
      `routing ${name}`,
      new URL('./backend.ts', import.meta.url),
      sdk,
    );
  }

  /** A time of the child's clock on this process's. */
  local(at: number): number {
    return at - this.#offsetMs;
  }

  /** The child's clock minus this process's, and the round trip of the ping that measured it. */
  get clock(): { offsetMs: number; rttMs: number } {
    return { offsetMs: this.#offsetMs, rttMs: this.#rttMs };
  }

  get alive(): boolean {
    return !this.#killed;
  }

  async start(consul: Address, key: string, ttl: string, lockDelay: string): Promise<void> {
    const { port } = await this.#child.ask<{ port: number }>({
      type: 'start',
      consul,
      key,
      name: this.name,
      ttl,
      lockDelay,
    });
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    const clock = await clockOffset(() => this.#child.ask<number>({ type: 'now' }));
    this.#offsetMs = clock.offsetMs;
    this.#rttMs = clock.rttMs;
  }

  /** When it leads (its acquire's time on this process's clock), or null after `timeoutMs` / a cancel. */
  async waitLeader(timeoutMs: number): Promise<LeaderNews | null> {
    const news = await this.#child.ask<LeaderNews | null>({ type: 'waitLeader', timeoutMs });
    return news && { session: news.session, at: this.local(news.at) };
  }

  async cancelWaits(): Promise<void> {
    await this.#child.ask({ type: 'cancelWaits' });
  }

  /** Steps down; times on this process's clock. */
  async stepDown(rejoinAfterMs: number): Promise<SteppedDown> {
    const s = await this.#child.ask<SteppedDown>({ type: 'stepDown', rejoinAfterMs });
    return { ...s, downAt: this.local(s.downAt), releaseSentAt: this.local(s.releaseSentAt) };
  }

  async status(): Promise<BackendStatus> {
    const s = await this.#child.ask<BackendStatus>({ type: 'status' });
    return { ...s, lastRenewalAt: this.local(s.lastRenewalAt) };
  }

  /** The process's CPU time so far (user + system, µs). */
  cpuUs(): Promise<number> {
    return this.#child.ask<number>({ type: 'cpu' });
  }

  /** SIGKILL: a crash. */
  kill(): void {
    this.#killed = true;
    if (this.#child.pid !== undefined) process.kill(this.#child.pid, 'SIGKILL');
  }

  stop(): Promise<void> {
    return this.#child.stop();
  }
}

export interface Leading {
  readonly backend: Backend;
  readonly session: string;
  /** Its successful acquire, on this process's clock. */
  readonly at: number;
}

/** Backends campaigning for one key. */
export class BackendSet {
  private constructor(readonly backends: readonly Backend[]) {}

  static async start(
    count: number,
    sdk: SdkSnapshot,
    consul: Address,
    key: string,
    session: { ttl: string; lockDelay: string },
  ): Promise<BackendSet> {
    const backends = Array.from({ length: count }, (_, i) => new Backend(`backend-${i + 1}`, sdk));
    const set = new BackendSet(backends);
    try {
      await Promise.all(backends.map((b) => b.start(consul, key, session.ttl, session.lockDelay)));
    } catch (error) {
      await set.stop();
      throw error;
    }
    return set;
  }

  /** The first of the live backends but `except` that leads (now or within `timeoutMs`). */
  async nextLeader(except: Backend | undefined, timeoutMs: number): Promise<Leading> {
    const candidates = this.backends.filter((b) => b !== except && b.alive);
    const found = await new Promise<Leading>((resolve, reject) => {
      let pending = candidates.length;
      const none = (): void => {
        pending -= 1;
        if (pending === 0) reject(new Error(`no backend led within ${timeoutMs} ms`));
      };
      for (const backend of candidates) {
        backend.waitLeader(timeoutMs).then((news) => {
          if (news) resolve({ backend, ...news });
          else none();
        }, none);
      }
    });
    await Promise.all(candidates.filter((b) => b !== found.backend).map((b) => b.cancelWaits()));
    return found;
  }

  /** 421 answers of every live backend so far. */
  async misdirected(): Promise<number> {
    const statuses = await Promise.all(this.backends.filter((b) => b.alive).map((b) => b.status()));
    return statuses.reduce((sum, s) => sum + s.misdirected, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.stop()));
  }
}
