/**
 * The acceptance tests of leaderDispatcher (issue #15): a real Consul agent, three real
 * backend processes campaigning for the key (test/support/routing-backends.ts), a client
 * sending continuous requests through the dispatcher, and Consul's holder changes read
 * independently (followHolders). 20 planned step-downs lose no request and send none to a
 * backend after the client saw it lose; a SIGKILLed leader: idempotent requests wait for the
 * next one or fail with a typed error, a POST it had received fails and is not sent again;
 * no connection is left open.
 *
 * The scenarios, records and checks are shared with test/routing-proxy-failover.test.ts
 * (test/support/routing-*.ts); what is this file's own is the client's path: the dispatcher.
 */
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { LeaderRequestError, NoLeaderError, leaderDispatcher } from '@consul-leader/discovery/http';
import { expectCrashRecovered, expectHastyByWhatWasNamed } from './support/routing-checks.js';
import type { ClientPath } from './support/routing-client.js';
import { LeaderCrash } from './support/routing-crash.js';
import {
  Node,
  originOf,
  setUpFailoverBackends,
  untilNoConnectionOpen,
} from './support/routing-failover-setup.js';
import { plannedStepDowns } from './support/routing-step-downs.js';

const STEP_DOWNS = 20;

const world = setUpFailoverBackends('failover');

/** Requests made straight through `dispatcher`: the host is never resolved, the dispatcher replaces the origin with the leader's. */
const through = (dispatcher: Dispatcher): ClientPath => ({ origin: 'http://leader.invalid', dispatcher });

describe('leaderDispatcher: failover with real backends', () => {
  it(`${STEP_DOWNS} planned step-downs under continuous load: no request fails or reaches a leader the client saw lose`, async () => {
    const { requests, misdirected, afterLoss } = await plannedStepDowns(
      world,
      STEP_DOWNS,
      (handle, factory) => {
        const dispatcher = leaderDispatcher(handle, { origin: originOf, waitForLeader: '1s', factory });
        return {
          client: through(dispatcher),
          destroy: () => dispatcher.destroy(),
          // With the handle's close(), it leaves no connection open anywhere.
          close: () => dispatcher.close(),
        };
      },
    );
    console.info(
      `planned: ${requests} requests, ${misdirected} answered 421 and sent on, ${afterLoss} arrived after the client saw the loss (sent before)`,
    );
  });

  it('a SIGKILLed leader: idempotent requests complete on the next leader or fail typed; a POST it had received fails and is not sent again', async () => {
    const set = world.crash;
    const dead = await set.leader();
    const handle = world.discovery.follow(world.crashKey, { schema: Node });
    const patient = leaderDispatcher(handle, { origin: originOf, waitForLeader: '30s' });
    const hasty = leaderDispatcher(handle, { origin: originOf, waitForLeader: 500 });
    const crash = new LeaderCrash(handle, dead, through(patient), through(hasty));
    const { deadSession } = crash;

    try {
      // Its connection broke after the POST was sent: a typed error at once, not a wait for the next leader.
      const post = await crash.killWithRequestsInFlight();
      expect(post.error).toBeInstanceOf(LeaderRequestError);
      expect(post.error).toMatchObject({
        code: 'LEADER_REQUEST_FAILED',
        origin: dead.origin,
        sessionId: deadSession,
      });
      expect((post.error as Error).message).toContain('broke the connection before answering');
      expect((post.error as Error).cause).toBeInstanceOf(Error);

      await crash.untilNextLeader();
      const alive = await expectCrashRecovered(crash, set, world.crashHolders);

      // Hasty ones failed with the error matching what the handle named when their wait ended
      // (a dispatcher's error is delivered in microtasks after it, so: when they settled).
      const hastyCounts = expectHastyByWhatWasNamed(crash, {
        namedWhenDecided: (o) => o.namedAtSettle,
        deadNamed: (o, label) => {
          expect(o.error, label).toBeInstanceOf(LeaderRequestError);
          expect(o.error, label).toMatchObject({
            code: 'LEADER_REQUEST_FAILED',
            origin: dead.origin,
            sessionId: deadSession,
          });
          expect((o.error as Error).message, label).toContain('still the leader');
          expect((o.error as Error).cause, label).toMatchObject({ code: 'ECONNREFUSED' });
        },
        noneNamed: (o, label) => {
          expect(o.error, label).toBeInstanceOf(NoLeaderError);
          expect(o.error, label).toMatchObject({ code: 'NO_LEADER', key: world.crashKey });
        },
      });
      console.info(
        `crash: ${hastyCounts.hasty} hasty requests, ${hastyCounts.refused} refused by the dead leader, ${hastyCounts.vacant} without a leader`,
      );

      await patient.close();
      await hasty.close();
      handle.close();
      await untilNoConnectionOpen(alive);
    } finally {
      crash.log.stop();
      handle.close();
      // Closed above when all went well; after a failure nothing may keep the test waiting.
      await Promise.all([patient.destroy(), hasty.destroy()]);
    }
  });
});
