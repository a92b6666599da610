/**
 * One request routed to the leader: sent to the leader `handle.current` names, waiting for
 * one while there is none, and sent again to the next leader when the one it went to
 * refused it, broke the connection before answering (idempotent requests), or answered
 * that it is not the leader any more. The caller's handler sees one request: a single
 * answer, or a single error.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Leader } from '@consul-leader/types';
import { DiscoveryClosedError, LeaderRequestError, NoLeaderError } from '../errors.js';
import type { LeaderHandle } from '../state/follow-handle.js';
import type { DispatchController, DispatchHandler } from './handlers.js';
import type { LeaderWaits } from './leader-waits.js';
import type { RoutingSettings } from './options.js';
import type { OriginPools } from './origin-pools.js';
import { type ReplayableBody, replayableBody } from './replayable-body.js';
import { type FailureKind, failureKind, mayResend } from './retry-rules.js';

type Headers = Record<string, string | string[] | undefined>;

/** What a routed request needs of its dispatcher. */
export interface Routing<T> {
  readonly handle: LeaderHandle<T>;
  readonly settings: RoutingSettings;
  readonly waits: LeaderWaits<T>;
  readonly pools: OriginPools;
  /** The origin of a leader; throws when `origin(leader)` gives none that can be used. */
  originOf(leader: Leader<T>): string;
}

/** Why an attempt that never reached its leader was abandoned: the leader changed first. */
class LeaderChanged extends Error {}

/** An attempt that failed in a way that lets the request go to the next leader. */
interface Failure {
  readonly origin: string;
  readonly sessionId: string;
  readonly error: Error;
  /** What happened, for the message: "refused the connection", "answered 421". */
  readonly what: string;
}

const WHAT: Record<FailureKind, string> = {
  refused: 'refused the connection',
  reset: 'broke the connection before answering',
  other: 'failed',
};

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The request as its caller sees it; also the controller the caller's handler is given. */
export class RoutedRequest<T> implements DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  /** The answer's headers as they came (undici's controllers carry them): no rebuilding for legacy handlers. */
  rawHeaders: DispatchController['rawHeaders'] = null;

  private readonly body: ReplayableBody;
  private readonly method: string;
  private attemptsLeft: number;
  private attempt: Attempt<T> | undefined;
  private cancelWait: (() => void) | undefined;
  /** The caller's handler has had its answer (or error): nothing more reaches it. */
  private settled = false;
  /** An answer has begun: from now on nothing is sent again. */
  private committed = false;

  constructor(
    private readonly routing: Routing<T>,
    private readonly options: Dispatcher.DispatchOptions,
    private readonly handler: DispatchHandler,
  ) {
    this.body = replayableBody(options.body, routing.settings.bodyLimit);
    this.method = String(options.method ?? 'GET').toUpperCase();
    this.attemptsLeft = routing.settings.attempts;
  }

  start(): void {
    // At once, not when a connection is had: so the caller can abort a request that waits.
    this.handler.onRequestStart?.(this, {});
    this.route(undefined, undefined);
  }

  // ---- the controller the caller holds

  abort(reason?: Error): void {
    if (this.aborted || this.settled) return;
    this.aborted = true;
    this.reason = reason ?? new Error('the request was aborted');
    this.cancelWait?.();
    const controller = this.attempt?.controller;
    // An attempt on a connection ends with the reason; one still queued aborts itself when it starts.
    if (controller) controller.abort(this.reason);
    else this.fail(this.reason);
  }

  pause(): void {
    this.paused = true;
    this.attempt?.controller?.pause();
  }

  resume(): void {
    this.paused = false;
    this.attempt?.controller?.resume();
  }

  // ---- routing

  /** Sends to the current leader unless its session is `other`; else waits for one. */
  private route(other: string | undefined, failure: Failure | undefined): void {
    if (this.aborted || this.settled) return;
    const leader = this.routing.handle.current;
    if (leader && leader.session.id !== other) {
      this.send(leader);
      return;
    }
    this.cancelWait = this.routing.waits.wait(
      other,
      this.routing.settings.waitForLeaderMs,
      (next) => {
        this.cancelWait = undefined;
        this.send(next);
      },
      (why) => {
        this.cancelWait = undefined;
        this.fail(this.noLeader(why, failure));
      },
    );
  }

  private noLeader(why: 'expired' | 'closed', failure: Failure | undefined): Error {
    if (why === 'closed') return new DiscoveryClosedError();
    const ms = this.routing.settings.waitForLeaderMs;
    if (failure && this.routing.handle.current?.session.id === failure.sessionId) {
      return new LeaderRequestError(
        failure.origin,
        failure.sessionId,
        `the leader at ${failure.origin} ${failure.what}, and is still the leader after waitForLeader (${ms} ms)`,
        { cause: failure.error },
      );
    }
    const key = this.routing.handle.key;
    return new NoLeaderError(key, `no leader for ${JSON.stringify(key)} within waitForLeader (${ms} ms)`);
  }

  private send(leader: Leader<T>): void {
    if (this.aborted || this.settled) return;
    let origin = '';
    let pool: Dispatcher;
    try {
      origin = this.routing.originOf(leader);
      pool = this.routing.pools.get(origin);
    } catch (error) {
      const message = `origin(leader) gave no origin to send to: ${messageOf(error)}`;
      this.fail(new LeaderRequestError(origin, leader.session.id, message, { cause: error }));
      return;
    }
    const body = this.body.next();
    if (body === undefined) {
      this.fail(this.bodySpent({ origin, sessionId: leader.session.id }));
      return;
    }
    const attempt = new Attempt(this, this.routing, leader, origin);
    this.attempt = attempt;
    pool.dispatch({ ...this.options, origin, body }, attempt);
  }

  // ---- what attempts report

  /** @internal */ respond(
    status: number,
    headers: Headers,
    message: string | undefined,
    raw: DispatchController['rawHeaders'],
  ): void {
    this.committed = true;
    this.rawHeaders = raw ?? null;
    if (this.paused) this.attempt?.controller?.pause();
    this.handler.onResponseStart?.(this, status, headers as never, message);
  }

  /** @internal */ data(chunk: Buffer): void {
    if (!this.settled) this.handler.onResponseData?.(this, chunk);
  }

  /** @internal */ end(trailers: Headers): void {
    if (this.settled) return;
    this.settled = true;
    this.attempt = undefined;
    this.handler.onResponseEnd?.(this, trailers as never);
  }

  /** @internal */ upgraded(status: number, headers: Headers, socket: Duplex): void {
    this.committed = true;
    this.settled = true;
    this.attempt = undefined;
    this.handler.onRequestUpgrade?.(this, status, headers as never, socket);
  }

  /** @internal An answer with `notLeaderStatus` ended: the next leader gets the request. */
  misdirected(attempt: Attempt<T>, status: number): void {
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    const error = new Error(`${attempt.origin} answered ${status}: it is not the leader`);
    this.resend({ ...attempt.target, error, what: `answered ${status} (not the leader)` });
  }

  /** @internal */ failed(attempt: Attempt<T>, error: Error): void {
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    if (this.aborted) return this.fail(this.reason ?? error);
    const { origin, sessionId } = attempt.target;
    // Nothing was sent: the leader changed while the request waited for a connection.
    if (error instanceof LeaderChanged) return this.later(() => this.route(undefined, undefined));
    if (this.committed) {
      const message = `the answer of the leader at ${origin} broke off: ${error.message}`;
      return this.fail(new LeaderRequestError(origin, sessionId, message, { cause: error }));
    }
    const kind = failureKind(error, attempt.started);
    if (mayResend(kind, this.method)) {
      return this.resend({ origin, sessionId, error, what: WHAT[kind] });
    }
    const message = `the request to the leader at ${origin} ${WHAT[kind]}: ${error.message}`;
    this.fail(new LeaderRequestError(origin, sessionId, message, { cause: error }));
  }

  /** Sends the request again to a leader other than the failure's, if attempts are left. */
  private resend(failure: Failure): void {
    if (this.body.spent) {
      this.fail(this.bodySpent(failure));
      return;
    }
    if (this.attemptsLeft === 0) {
      const attempts = this.routing.settings.attempts;
      const message = `the leader at ${failure.origin} ${failure.what}, and no attempt is left (retry.attempts is ${attempts})`;
      this.fail(new LeaderRequestError(failure.origin, failure.sessionId, message, { cause: failure.error }));
      return;
    }
    this.attemptsLeft -= 1;
    this.later(() => this.route(failure.sessionId, failure));
  }

  private bodySpent(failure: { origin: string; sessionId: string; error?: Error }): LeaderRequestError {
    const limit = this.routing.settings.bodyLimit;
    const message = `the request body was longer than retry.bodyLimit (${limit} bytes): it cannot be sent again`;
    return new LeaderRequestError(failure.origin, failure.sessionId, message, { cause: failure.error });
  }

  /** Out of the failed attempt's own callback, so the pool it came from has settled first. */
  private later(step: () => void): void {
    queueMicrotask(step);
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.handler.onResponseError?.(this, error);
  }
}

/** One try of a request, on one leader's pool. */
class Attempt<T> implements DispatchHandler {
  controller: DispatchController | undefined;
  /** It was handed to a connection to its leader (its bytes may have left). */
  started = false;
  private notLeader: number | undefined;

  constructor(
    private readonly request: RoutedRequest<T>,
    private readonly routing: Routing<T>,
    private readonly leader: Leader<T>,
    readonly origin: string,
  ) {}

  get target(): { origin: string; sessionId: string } {
    return { origin: this.origin, sessionId: this.leader.session.id };
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.request.aborted) {
      controller.abort(this.request.reason ?? new Error('the request was aborted'));
      return;
    }
    // Right before its bytes leave: never to a leader whose loss the handle has seen.
    if (this.routing.handle.current?.session.id !== this.leader.session.id) {
      controller.abort(new LeaderChanged('the leader changed before the request was sent'));
      return;
    }
    this.started = true;
  }

  onRequestUpgrade(_c: DispatchController, status: number, headers: Headers, socket: Duplex): void {
    this.request.upgraded(status, headers, socket);
  }

  onResponseStart(controller: DispatchController, status: number, headers: Headers, message?: string): void {
    if (status === this.routing.settings.notLeaderStatus) {
      this.notLeader = status;
      return;
    }
    this.request.respond(status, headers, message, controller.rawHeaders);
  }

  onResponseData(_c: DispatchController, chunk: Buffer): void {
    if (this.notLeader === undefined) this.request.data(chunk);
  }

  onResponseEnd(_c: DispatchController, trailers: Headers): void {
    if (this.notLeader === undefined) this.request.end(trailers);
    else this.request.misdirected(this, this.notLeader);
  }

  onResponseError(_c: DispatchController, error: Error): void {
    // The backend said it is not the leader before its answer broke off: still not processed.
    if (this.notLeader !== undefined && !this.request.aborted) this.request.misdirected(this, this.notLeader);
    else this.request.failed(this, error);
  }
}
