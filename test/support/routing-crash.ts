/**
 * The SIGKILL scenario both failover files run, each through its own client paths: a POST
 * the leader has received (never answered) and a GET it is still answering when it is
 * killed; then GETs through a patient path (a long waitForLeader) and a hasty one (500 ms)
 * until the handle names the next leader, each GET's outcome recorded for the checks.
 */
import { performance } from 'node:perf_hooks';
import { expect } from 'vitest';
import type { LeaderHandle } from '@consul-leader/discovery';
import { until } from './recorder.js';
import type { Backend } from './routing-backends.js';
import { type Answer, type ClientPath, type Via, exchange, pathOf } from './routing-client.js';
import { type Node, leaderSession, untilStats } from './routing-failover-setup.js';
import { HandleLog } from './routing-observers.js';

/** How a request settled: answered, or failed. */
export interface Settled {
  answer?: Answer;
  error?: unknown;
}

export interface Outcome extends Settled {
  /** The request's `id` (`<what>-<n>`). */
  readonly id: string;
  /** `warm`, `patient-…`, `hasty-…` */
  readonly what: string;
  /** The index in HandleLog.named of what the handle named when the request was made. */
  readonly namedAtDispatch: number;
  /** What the handle named when it settled (a dispatcher's error comes in microtasks, so: at expiry). */
  namedAtSettle?: string | null;
}

/** One run of the scenario: `dead` leads the key `handle` follows, and both paths go through `handle`. */
export class LeaderCrash {
  readonly deadSession: string;
  /** What the handle named, from the construction on. */
  readonly log: HandleLog;
  readonly outcomes: Outcome[] = [];
  /** The client saw the key vacant (the dead session invalidated, the lock-delay running). */
  vacancySeen = false;
  /** Known once untilNextLeader() resolved. */
  nextSession = '';
  /** The GET the leader was answering when it died. */
  reset: Outcome | undefined;
  private readonly pending: Array<Promise<unknown>> = [];
  private slow: Promise<Outcome> | undefined;
  private n = 0;

  constructor(
    private readonly handle: LeaderHandle<Node>,
    readonly dead: Backend,
    private readonly patient: ClientPath,
    private readonly hasty: ClientPath,
  ) {
    this.deadSession = leaderSession(dead);
    // The moment the key is seen vacant, a GET through each path: the hasty one finds no leader.
    this.log = new HandleLog(handle, (entry, named) => {
      if (entry.session !== null || named.length < 2 || this.vacancySeen) return;
      this.vacancySeen = true;
      this.pending.push(this.get(hasty, 'hasty-vacant'), this.get(patient, 'patient-vacant', 'fetch'));
    });
  }

  /**
   * A warm GET, then the POST and the slow GET in flight when the leader is SIGKILLed.
   * Resolves with the POST's outcome, which must come before the handle names the next leader:
   * its connection broke after it was sent, so it fails at once rather than waiting.
   */
  async killWithRequestsInFlight(): Promise<Settled> {
    const { handle, dead, deadSession, patient } = this;
    await until('the handle names the leader', () => handle.current?.session.id === deadSession);
    const warm = await this.get(patient, 'warm');
    expect(warm.answer).toMatchObject({ status: 200, session: deadSession });

    const from = dead.events.length;
    const post: Promise<Settled> = exchange(
      patient,
      'request',
      'POST',
      pathOf('/hold', 'post-1'),
      'order-1',
    ).then(
      (answer) => ({ answer }),
      (error: unknown) => ({ error }),
    );
    await dead.waitFor((e) => e.type === 'holdArrived' && e.url === '/hold?id=post-1', {
      from,
      timeoutMs: 10_000,
    });
    this.slow = this.get(patient, 'patient-reset', 'request', '/slow?ms=1500');
    await untilStats([dead], 'the GET reached the leader', ([s]) =>
      Boolean(s?.requests.some((r) => r.url.includes('patient-reset'))),
    );
    dead.kill();
    expect((await dead.exited()).signal).toBe('SIGKILL');

    const nextLeader = until('the next leader', () => this.nextNamed(), 40_000).then(
      () => 'still pending when the next leader was named',
      () => 'still pending, and no next leader',
    );
    const settled = await Promise.race([post, nextLeader]);
    if (typeof settled === 'string') throw new Error(`the POST the dead leader had received: ${settled}`);
    expect(handle.current?.session.id).toBe(deadSession);
    return settled;
  }

  /**
   * Patient GETs (refused by the dead process, then waiting), and hasty ones one after another
   * until the handle names the next leader; then one more hasty GET, which the next leader
   * answers, and every GET still pending.
   */
  async untilNextLeader(): Promise<void> {
    const { handle, patient, hasty } = this;
    this.pending.push(this.get(patient, 'patient-refused'), this.get(patient, 'patient-refused', 'fetch'));
    const deadline = performance.now() + 40_000;
    for (let i = 0; !this.nextNamed(); i += 1) {
      if (performance.now() > deadline) throw new Error(`no next leader: ${JSON.stringify(this.log.named)}`);
      await this.get(hasty, 'hasty');
      if (i === 4) this.pending.push(this.get(patient, 'patient-later'));
    }
    this.nextSession = handle.current?.session.id ?? '';
    const after = await this.get(hasty, 'hasty-after');
    expect(after.answer).toMatchObject({ status: 200, session: this.nextSession });
    this.reset = await this.slow;
    await Promise.all(this.pending);
  }

  private nextNamed(): boolean {
    const session = this.handle.current?.session.id;
    return session !== undefined && session !== this.deadSession;
  }

  /** A GET through `client`, recorded in `outcomes`; never rejects. */
  private get(client: ClientPath, what: string, via: Via = 'request', route = '/echo'): Promise<Outcome> {
    const outcome: Outcome = { id: `${what}-${++this.n}`, what, namedAtDispatch: this.log.latestIndex() };
    this.outcomes.push(outcome);
    return exchange(client, via, 'GET', pathOf(route, outcome.id), undefined).then(
      (answer) => {
        outcome.namedAtSettle = this.handle.current?.session.id ?? null;
        outcome.answer = answer;
        return outcome;
      },
      (error: unknown) => {
        outcome.namedAtSettle = this.handle.current?.session.id ?? null;
        outcome.error = error;
        return outcome;
      },
    );
  }
}
