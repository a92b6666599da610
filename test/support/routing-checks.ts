/**
 * The causal checks of the failover tests (issue #15), the same whether the client reaches
 * the leader through leaderDispatcher or through createLeaderProxy: what the client got,
 * what the handle named and when, when bytes left and what the backends logged must agree.
 */
import { expect } from 'vitest';
import { idOf, why } from './routing-client.js';
import type { LeaderCrash, Outcome } from './routing-crash.js';
import type { Backend, Backends, BackendStats, Holders } from './routing-backends.js';
import { KINDS, type Sent } from './routing-load.js';
import type { HandleLog, Start } from './routing-observers.js';

/** What `/echo` and `/slow` answer. */
export interface Echo {
  readonly method: string;
  readonly url: string;
  readonly body: string;
  readonly sessionId: string;
  readonly headers: Record<string, string | undefined>;
}

/** What one backend logged, read once the load stopped. */
export interface Arrivals {
  readonly backend: Backend;
  readonly stats: BackendStats;
}

export const arrivalsAt = (set: Backends): Promise<Arrivals[]> =>
  Promise.all(set.backends.map(async (backend) => ({ backend, stats: await backend.stats() })));

export interface PlannedRun {
  readonly sent: readonly Sent[];
  readonly starts: readonly Start[];
  readonly arrivals: readonly Arrivals[];
  readonly log: HandleLog;
  readonly holders: Holders;
  readonly stepDowns: number;
  /** What else each echo must show (a proxy's forwarded headers). */
  readonly echoAlso: (echo: Echo) => boolean;
}

/**
 * Every check of the planned step-downs; returns how many requests met a stepped-down
 * backend (and were sent on) and how many arrived after their loss was seen, for the log.
 */
export function expectPlannedStepDownsHeld(run: PlannedRun): { misdirected: number; afterLoss: number } {
  expectEveryRequestAnswered(run.sent, run.echoAlso);
  expectHandleFollowedConsul(run);
  expectAnswersFromNamedLeaders(run.sent, run.log);
  // Bytes left only toward the leader the handle named at that very moment.
  expect(run.starts.filter((s) => s.named === null || s.namedOrigin !== s.origin)).toEqual([]);
  return expectServedOnceNeverAfterLoss(run);
}

/** Every request (POSTs included) answered 200 by a backend, echoing what was sent: no 421, 502 or 503 reached the client. */
function expectEveryRequestAnswered(sent: readonly Sent[], echoAlso: (echo: Echo) => boolean): void {
  for (const kind of KINDS) expect(sent.filter((r) => r.kind === kind).length).toBeGreaterThan(0);
  const failed = sent.filter((r) => r.error !== undefined || r.answer?.status !== 200);
  expect(
    failed.map(
      (r) =>
        `${r.id} ${r.kind.via} ${r.kind.method} ${r.path}: ${r.answer ? `${r.answer.status} ${r.answer.text}` : why(r.error)}`,
    ),
  ).toEqual([]);
  // The echo: method, path and body as sent, by the leader that stamped the answer.
  const misanswered = sent.flatMap((r) => {
    const echo = JSON.parse(r.answer?.text ?? '') as Echo;
    const ok =
      echo.method === r.kind.method &&
      echo.url === r.path &&
      echo.body === (r.body ?? '') &&
      echo.sessionId === r.answer?.session &&
      echoAlso(echo);
    return ok ? [] : [`${r.id}: ${r.answer?.text ?? ''}`];
  });
  expect(misanswered).toEqual([]);
}

/** The handle's record follows Consul's: every holder, in order, each named once; so do the answers of each loop. */
function expectHandleFollowedConsul({ sent, log, holders, stepDowns }: PlannedRun): void {
  const named = log.sessions();
  expect(new Set(named).size).toBe(named.length);
  expect(named).toHaveLength(stepDowns + 1);
  const consulSessions = holders.changes.flatMap((c) => (c.session === null ? [] : [c.session]));
  const firstSeen = consulSessions.indexOf(named[0] ?? '');
  expect(firstSeen).toBeGreaterThanOrEqual(0);
  expect(consulSessions.slice(firstSeen)).toEqual(named);
  // Each loop sends one request after another: the leaders answering it come in Consul's order.
  for (const kind of KINDS) {
    const order = sent
      .filter((r) => r.kind === kind)
      .map((r) => consulSessions.indexOf(r.answer?.session ?? ''))
      .filter((i, k, all) => k === 0 || all[k - 1] !== i);
    expect(
      order.filter((i, k) => i < firstSeen || (k > 0 && i < (order[k - 1] ?? Infinity))),
      `${kind.via} ${kind.method} ${kind.route}: ${order.join(' ')}`,
    ).toEqual([]);
  }
}

/** Every answer came from the leader named at dispatch or a later one, and only once the handle had named that one. */
function expectAnswersFromNamedLeaders(sent: readonly Sent[], log: HandleLog): void {
  const misordered = sent.flatMap((r) => {
    const session = r.answer?.session ?? '';
    const i = log.indexOf(session);
    const namedAt = log.named[i]?.at ?? Infinity;
    const ok = i >= r.namedAtDispatch && namedAt <= (r.answeredAt ?? -Infinity);
    return ok ? [] : [`${r.id}: answered by ${session} (#${i}), named #${r.namedAtDispatch} at dispatch`];
  });
  expect(misordered).toEqual([]);
}

/**
 * What reached the backends: each request served once, by the leader that answered it;
 * nothing reached a backend unless it was sent before the handle named another leader.
 */
function expectServedOnceNeverAfterLoss(run: PlannedRun): { misdirected: number; afterLoss: number } {
  const { sent, starts, arrivals, log } = run;
  const startsOf = new Map<string, Start[]>();
  for (const s of starts) {
    const key = `${s.id} ${s.origin}`;
    startsOf.set(key, [...(startsOf.get(key) ?? []), s]);
  }
  const ours = new Set(sent.map((r) => r.id));
  const served = new Map<string, string[]>();
  const arrivedAt = new Map<string, number>();
  const unexplained: string[] = [];
  let misdirected = 0;
  let afterLoss = 0;
  for (const { backend, stats } of arrivals) {
    for (const r of stats.requests) {
      const id = idOf(r.url);
      const what = `${backend.name} got ${r.method} ${r.url} (${r.leader ? 'leading' : 'not leading'}, session ${r.sessionId || '-'})`;
      if (id === null || !ours.has(id)) {
        unexplained.push(`${what}: not the load's`);
        continue;
      }
      const key = `${id} ${backend.origin}`;
      arrivedAt.set(key, (arrivedAt.get(key) ?? 0) + 1);
      // The attempt that carried it: sent while the handle named this leadership of this
      // backend (a 421 may carry '' if the backend had already destroyed that session).
      const carrier = (startsOf.get(key) ?? []).find((s) =>
        r.leader ? s.named === r.sessionId : r.sessionId === s.named || r.sessionId === '',
      );
      if (!carrier?.named) {
        unexplained.push(`${what}: no attempt was sent to it while the handle named it`);
        continue;
      }
      const lostAt = log.lostAt(carrier.named);
      if (!(carrier.at < lostAt)) unexplained.push(`${what}: sent after the handle named another leader`);
      if (r.at > lostAt) afterLoss += 1; // in flight when the loss was seen: allowed
      if (r.leader) served.set(id, [...(served.get(id) ?? []), r.sessionId]);
      else misdirected += 1;
    }
  }
  for (const [key, count] of arrivedAt) {
    const sentCount = startsOf.get(key)?.length ?? 0;
    if (count > sentCount) unexplained.push(`${key}: arrived ${count} times, sent ${sentCount}`);
  }
  expect(unexplained).toEqual([]);
  // Each request (POST bodies included) served exactly once, by the leader whose answer the client got.
  expect(sent.filter((r) => served.get(r.id)?.join() !== r.answer?.session).map((r) => r.id)).toEqual([]);
  expect(served.size).toBe(sent.length);
  // Requests did meet backends that had stepped down (and were sent on): the path was exercised.
  expect(misdirected).toBeGreaterThan(0);
  return { misdirected, afterLoss };
}

/**
 * The common checks after a crash: the key went vacant, then to another backend, in Consul
 * and for the handle; patient GETs all completed on the next leader; no answer came from a
 * leader older than the one named at dispatch; the POST reached the dead leader only.
 * Resolves with the backends still alive.
 */
export async function expectCrashRecovered(
  crash: LeaderCrash,
  set: Backends,
  holders: Holders,
): Promise<Backend[]> {
  const { dead, deadSession, nextSession, log, outcomes } = crash;
  // The key went vacant (TTL), then to another backend (after the lock-delay).
  const consulSessions = holders.changes.map((c) => c.session);
  expect(consulSessions.slice(consulSessions.indexOf(deadSession))).toEqual([deadSession, null, nextSession]);
  expect(log.named.map((e) => e.session)).toEqual([deadSession, null, nextSession]);
  expect(crash.vacancySeen).toBe(true);

  // With a long waitForLeader, GETs completed on the next leader, the one whose connection
  // broke mid-request included.
  const patients = outcomes.filter((o) => o.what.startsWith('patient'));
  expect(patients.map((o) => o.what).sort()).toEqual([
    'patient-later',
    'patient-refused',
    'patient-refused',
    'patient-reset',
    'patient-vacant',
  ]);
  for (const o of patients) {
    expect(o.error === undefined ? o.answer : why(o.error), o.id).toMatchObject({
      status: 200,
      session: nextSession,
    });
  }
  expect(JSON.parse(crash.reset?.answer?.text ?? '')).toMatchObject({
    url: expect.stringContaining('patient-reset'),
  });
  for (const o of outcomes.filter((x) => x.answer?.status === 200)) {
    expect(log.indexOf(o.answer?.session ?? ''), o.id).toBeGreaterThanOrEqual(o.namedAtDispatch);
  }

  // The POST reached the dead leader once, and no other backend ever.
  expect(dead.events.filter((e) => e.type === 'holdArrived')).toHaveLength(1);
  const alive = set.backends.filter((b) => b !== dead);
  const stats = await Promise.all(alive.map((b) => b.stats()));
  expect(stats.flatMap((s) => s.requests.filter((r) => r.url.startsWith('/hold')))).toEqual([]);
  expect(stats.flatMap((s) => s.requests.filter((r) => r.method !== 'GET'))).toEqual([]);
  // The reset GET was served once more, by the next leader.
  expect(
    stats.flatMap((s) => s.requests.filter((r) => r.url.includes('patient-reset') && r.leader)),
  ).toMatchObject([{ sessionId: nextSession }]);
  return alive;
}

/** What a hasty GET must have got, given what the handle named when its wait ended. */
export interface HastyExpectations {
  /** What the handle named when the request's wait ended (how the path tells differs). */
  namedWhenDecided(o: Outcome): string | null | undefined;
  /** The dead leader still named: it refused the request. */
  deadNamed(o: Outcome, label: string): void;
  /** No leader named at all. */
  noneNamed(o: Outcome, label: string): void;
  /** Checked of every hasty GET. */
  each?(o: Outcome, label: string): void;
}

/**
 * Hasty GETs (made before the next leader was named) failed as what the handle named when
 * their wait ended says, or were answered by the next leader that woke them; both failures
 * happened. Returns the counts, for the log.
 */
export function expectHastyByWhatWasNamed(
  crash: LeaderCrash,
  expectations: HastyExpectations,
): { hasty: number; refused: number; vacant: number } {
  const hastyOnes = crash.outcomes.filter((o) => o.what.startsWith('hasty') && o.what !== 'hasty-after');
  let refused = 0;
  let vacant = 0;
  for (const o of hastyOnes) {
    const named = expectations.namedWhenDecided(o);
    const label = `${o.id} (named when its wait ended: ${String(named)})`;
    expectations.each?.(o, label);
    if (named === crash.deadSession) {
      expectations.deadNamed(o, label);
      refused += 1;
    } else if (named === null) {
      expectations.noneNamed(o, label);
      vacant += 1;
    } else {
      // Woken by the next leader within its wait: answered by it.
      expect(o.answer, label).toMatchObject({ status: 200, session: crash.nextSession });
    }
  }
  expect(refused).toBeGreaterThan(0);
  expect(vacant).toBeGreaterThan(0);
  return { hasty: hastyOnes.length, refused, vacant };
}
