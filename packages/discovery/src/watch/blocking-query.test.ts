/**
 * The blocking-query loop, driven like Consul's api/watch/plan_test.go: a
 * scripted `send` (a queue of answers and failures, recording the index and
 * signal of each call) and fake timers. No agent, no network.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Subscription } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConsulHttpError,
  ConsulUnreachableError,
  InvalidResponseError,
  PermissionDeniedError,
} from '../errors.js';
import { assertStatus } from '../wire/status.js';
import { type ConsulResponse, RequestAbortedError } from '../wire/transport.js';
import { type BlockingQueryEvent, type BlockingQueryOptions, blockingQuery } from './blocking-query.js';
import type { RetryPolicy } from './retry-policy.js';

interface Value {
  readonly v: number;
}

/** With `random: () => 0.5`, a retry waits 3/4 of min(maxDelayMs, initialDelayMs * 2^(attempt-1)). */
const RETRY: RetryPolicy = { initialDelayMs: 100, maxDelayMs: 400, permissionDeniedDelayMs: 5_000 };

interface AnswerSpec {
  /** `X-Consul-Index`; null leaves the header out. */
  readonly index?: string | number | bigint | null;
  readonly body?: Value | string;
  readonly status?: number;
  readonly knownLeader?: string;
  readonly lastContact?: string;
  readonly headers?: IncomingHttpHeaders;
}

/** A `ConsulResponse` as the transport hands it on (header names lower-case, raw body). */
function answer(spec: AnswerSpec = {}): ConsulResponse {
  const headers: IncomingHttpHeaders = {
    'content-type': 'application/json',
    'x-consul-knownleader': spec.knownLeader ?? 'true',
    'x-consul-lastcontact': spec.lastContact ?? '0',
    ...spec.headers,
  };
  if (spec.index !== null) headers['x-consul-index'] = String(spec.index ?? 10);
  const body = spec.body ?? { v: 1 };
  return {
    status: spec.status ?? 200,
    headers,
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8'),
  };
}

/** Like the SDK's readers: an error status or a body that is not JSON rejects the answer. */
const readJson = (res: ConsulResponse): Value => {
  assertStatus(res);
  return JSON.parse(res.body.toString('utf8')) as Value;
};

interface SendCall {
  readonly index: bigint;
  readonly signal: AbortSignal;
  /** Whether the signal was already aborted when `send` was called. */
  readonly abortedAtSend: boolean;
  /** Fake ms since the query was subscribed. */
  readonly at: number;
}

type Step = { readonly ok: ConsulResponse } | { readonly fail: unknown };

interface Held {
  readonly resolve: (res: ConsulResponse) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The scripted `send`: each call takes the next step of the queue; with the
 * queue empty it blocks like a long poll, until the test settles it through
 * `held` or its signal aborts (then it rejects with RequestAbortedError, as
 * the transport does, unless `ignoreAbort`).
 */
function script(options: { ignoreAbort?: boolean } = {}) {
  const steps: Step[] = [];
  const calls: SendCall[] = [];
  let origin = 0;
  let held: Held | undefined;
  const send = (index: bigint, signal: AbortSignal): Promise<ConsulResponse> => {
    calls.push({ index, signal, abortedAtSend: signal.aborted, at: Date.now() - origin });
    const step = steps.shift();
    if (step) return 'ok' in step ? Promise.resolve(step.ok) : Promise.reject(step.fail);
    return new Promise<ConsulResponse>((resolve, reject) => {
      held = { resolve, reject };
      if (!options.ignoreAbort) {
        signal.addEventListener('abort', () => reject(new RequestAbortedError()), { once: true });
      }
    });
  };
  return {
    send,
    calls,
    indexes: () => calls.map((call) => call.index),
    times: () => calls.map((call) => call.at),
    ok(...responses: ConsulResponse[]) {
      for (const res of responses) steps.push({ ok: res });
    },
    fail(...errors: unknown[]) {
      for (const error of errors) steps.push({ fail: error });
    },
    /** The settle functions of the call blocked on an empty queue. */
    held(): Held {
      if (!held) throw new Error('no send is held');
      return held;
    },
    markOrigin() {
      origin = Date.now();
    },
  };
}

type Script = ReturnType<typeof script>;

const subscriptions: Subscription[] = [];

/** Subscribes to a blocking query over `s`, recording everything it emits. */
function start(s: Script, over: Partial<BlockingQueryOptions<Value>> = {}) {
  const events: BlockingQueryEvent<Value>[] = [];
  const state = { errored: undefined as unknown, completed: false };
  s.markOrigin();
  const subscription = blockingQuery<Value>({
    send: s.send,
    read: readJson,
    retry: RETRY,
    idleWakeups: { burst: 3, perSecond: 4 },
    random: () => 0.5,
    ...over,
  }).subscribe({
    next: (event) => events.push(event),
    error: (error: unknown) => {
      state.errored = error ?? new Error('errored with nothing');
    },
    complete: () => {
      state.completed = true;
    },
  });
  subscriptions.push(subscription);
  return {
    subscription,
    events,
    state,
    results: () => events.flatMap((e) => (e.type === 'result' ? [e] : [])),
    errors: () => events.flatMap((e) => (e.type === 'error' ? [e] : [])),
  };
}

/** Runs due timers and every promise continuation they lead to. */
const advance = (ms = 0): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  vi.useRealTimers();
});

describe('blockingQuery: following the index', () => {
  it('reads first without blocking (index 0), then blocks on each answer’s X-Consul-Index', async () => {
    const s = script();
    s.ok(answer({ index: 10, body: { v: 1 } }), answer({ index: 12, body: { v: 2 } }));
    const q = start(s);
    await advance();

    expect(s.indexes()).toEqual([0n, 10n, 12n]);
    expect(q.results().map((r) => r.value)).toEqual([{ v: 1 }, { v: 2 }]);
    expect(q.results().map((r) => r.meta)).toEqual([
      { index: 10n, lastContactMs: 0, knownLeader: true },
      { index: 12n, lastContactMs: 0, knownLeader: true },
    ]);
    expect(q.errors()).toEqual([]);
  });

  it('resets to a non-blocking read (0) when the index goes backwards, never blocking on the lower index', async () => {
    const s = script();
    s.ok(
      answer({ index: 10, body: { v: 1 } }),
      // A restored snapshot or a restarted agent: the index goes back to 5.
      answer({ index: 5, body: { v: 2 } }),
      answer({ index: 6, body: { v: 3 } }),
    );
    const q = start(s);
    await advance();

    expect(s.indexes()).toEqual([0n, 10n, 0n, 6n]);
    expect(s.indexes()).not.toContain(5n);
    // The answers themselves are still emitted: they are what Consul now holds.
    expect(q.results().map((r) => r.value.v)).toEqual([1, 2, 3]);
    expect(q.errors()).toEqual([]);
  });

  it('never blocks on index 0: an answer with X-Consul-Index 0 is followed by a read on index 1', async () => {
    const s = script();
    s.ok(answer({ index: 0, body: { v: 1 } }), answer({ index: 7, body: { v: 2 } }));
    const q = start(s);
    await advance();

    // nextIndex(0, 0) = 1: the first read was non-blocking (0), the next blocks on 1, not on 0.
    expect(s.indexes()).toEqual([0n, 1n, 7n]);
    expect(q.results().map((r) => r.meta.index)).toEqual([0n, 7n]);
  });

  it('with X-Consul-Index stuck at 0, alternates a non-blocking read and a read on 1 (never blocks on 0)', async () => {
    const s = script();
    s.ok(
      answer({ index: 0, body: { v: 1 } }),
      answer({ index: 0, body: { v: 2 } }),
      answer({ index: 0, body: { v: 3 } }),
      answer({ index: 0, body: { v: 4 } }),
    );
    start(s);
    await advance();

    // 0 → 1 (never block on 0); sent 1, got 0: backwards → reset to a non-blocking 0; and so on.
    expect(s.indexes()).toEqual([0n, 1n, 0n, 1n, 0n]);
  });

  it('blocks on `startIndex` first (through nextIndex), and reads without blocking again after a failure', async () => {
    const s = script();
    s.ok(answer({ index: 43, body: { v: 1 } }));
    s.fail(new ConsulUnreachableError('reset', 'cannot reach Consul (reset)'));
    s.ok(answer({ index: 44, body: { v: 2 } }));
    const q = start(s, { startIndex: 42n });
    await advance();

    expect(s.indexes()).toEqual([42n, 43n]);
    await advance(75);
    expect(s.indexes()).toEqual([42n, 43n, 0n, 44n]);
    expect(q.results().map((r) => r.value.v)).toEqual([1, 2]);
  });

  it('turns a `startIndex` of 0 into a read on 1 (never blocks on 0)', async () => {
    const s = script();
    start(s, { startIndex: 0n });
    await advance();
    expect(s.indexes()).toEqual([1n]);
  });
});

describe('blockingQuery: rejected answers', () => {
  const rejected: readonly (readonly [string, ConsulResponse])[] = [
    ['read throws on its body', answer({ index: 50, body: '{not json' })],
    ['X-Consul-Index is missing', answer({ index: null, body: { v: 2 } })],
    ['X-Consul-Index is not a number', answer({ index: 'fifty', body: { v: 2 } })],
  ];

  it.each(rejected)(
    'when %s: emits an error, does not adopt the index, and reads without blocking after the backoff',
    async (_case, bad) => {
      const s = script();
      const first = answer({ index: 10, body: { v: 1 } });
      s.ok(first, bad, first);
      const q = start(s);
      await advance();

      expect(s.indexes()).toEqual([0n, 10n]);
      expect(q.errors()).toHaveLength(1);
      const [failure] = q.errors();
      expect(failure?.error).toBeInstanceOf(InvalidResponseError);
      expect(failure?.attempt).toBe(1);
      expect(failure?.retryInMs).toBe(75);

      // Nothing before the backoff is over.
      await advance(74);
      expect(s.calls).toHaveLength(2);
      await advance(1);
      // Neither 50 (the rejected answer's) nor 10 (the last good one): a fresh non-blocking read.
      expect(s.indexes()).toEqual([0n, 10n, 0n, 10n]);
      expect(s.times()[2]).toBe(75);
      // The first answer after a failure is emitted even though it is the same as before.
      expect(q.results().map((r) => r.value.v)).toEqual([1, 1]);
      expect(q.state).toEqual({ errored: undefined, completed: false });
    },
  );

  it('rejects an answer whose X-Consul-Index is beyond uint64, even when read accepts it', async () => {
    const s = script();
    s.ok(answer({ index: (1n << 64n).toString(), body: { v: 1 } }));
    const q = start(s);
    await advance();

    expect(q.results()).toEqual([]);
    expect(q.errors().map((e) => e.error.code)).toEqual(['INVALID_RESPONSE']);
  });
});

describe('blockingQuery: unchanged answers', () => {
  it('does not emit byte-identical answers again, and follows their index', async () => {
    const s = script();
    s.ok(
      answer({ index: 10, body: { v: 1 } }),
      answer({ index: 10, body: { v: 1 } }),
      // The index moved for something else in the same table: the content is the same.
      answer({ index: 11, body: { v: 1 } }),
    );
    const read = vi.fn(readJson);
    const q = start(s, { read });
    await advance();

    expect(q.results()).toHaveLength(1);
    expect(q.events).toHaveLength(1);
    expect(s.indexes()).toEqual([0n, 10n, 10n, 11n]);
    // An identical answer is not decoded again.
    expect(read).toHaveBeenCalledTimes(1);
  });

  it('rate-limits identical wake-ups: `burst` back to back, then one per 1/perSecond', async () => {
    const s = script();
    const same = answer({ index: 10, body: { v: 1 } });
    s.ok(same, same, same, same, same, same, same);
    const q = start(s, { idleWakeups: { burst: 3, perSecond: 4 } });
    await advance();

    // The first answer is a change; the next three spend the burst; the fourth must wait 250 ms.
    expect(s.times()).toEqual([0, 0, 0, 0, 0]);
    await advance(249);
    expect(s.calls).toHaveLength(5);
    await advance(1);
    expect(s.times()).toEqual([0, 0, 0, 0, 0, 250]);
    await advance(250);
    expect(s.times()).toEqual([0, 0, 0, 0, 0, 250, 500]);
    await advance(250);
    expect(s.times()).toEqual([0, 0, 0, 0, 0, 250, 500, 750]);
    expect(q.results()).toHaveLength(1);
    expect(q.errors()).toEqual([]);
  });

  it('emits a changed answer after identical ones and follows it at once, without waiting for a token', async () => {
    const s = script();
    const same = answer({ index: 10, body: { v: 1 } });
    s.ok(same, same, same, answer({ index: 11, body: { v: 2 } }));
    const q = start(s, { idleWakeups: { burst: 1, perSecond: 1 } });
    await advance();

    // burst 1: the second identical wake-up waits 1 s.
    expect(s.times()).toEqual([0, 0, 0]);
    await advance(1_000);
    // The changed answer arrives at 1 s: emitted, and the next read goes at once (not at 2 s).
    expect(s.times()).toEqual([0, 0, 0, 1_000, 1_000]);
    expect(s.indexes()).toEqual([0n, 10n, 10n, 10n, 11n]);
    expect(q.results().map((r) => r.value.v)).toEqual([1, 2]);
  });

  it('emits a change of X-Consul-KnownLeader alone, with the same body', async () => {
    const s = script();
    s.ok(
      answer({ index: 10, body: { v: 1 }, knownLeader: 'true' }),
      answer({ index: 10, body: { v: 1 }, knownLeader: 'false', lastContact: '1500' }),
      answer({ index: 10, body: { v: 1 }, knownLeader: 'true' }),
    );
    const q = start(s);
    await advance();

    expect(q.results().map((r) => r.meta)).toEqual([
      { index: 10n, lastContactMs: 0, knownLeader: true },
      { index: 10n, lastContactMs: 1_500, knownLeader: false },
      { index: 10n, lastContactMs: 0, knownLeader: true },
    ]);
    expect(q.results().map((r) => r.value)).toEqual([{ v: 1 }, { v: 1 }, { v: 1 }]);
  });
  it('emits a change of HTTP status alone, with the same body', async () => {
    const s = script();
    s.ok(
      answer({ index: 10, status: 200, body: '' }),
      answer({ index: 10, status: 404, body: '' }),
      answer({ index: 10, status: 404, body: '' }),
    );
    // Like the KV reader: 404 is an answer (no key), not an error.
    const read = (res: ConsulResponse): Value => {
      assertStatus(res, [404]);
      return { v: res.status };
    };
    const q = start(s, { read });
    await advance();

    expect(q.results().map((r) => r.value.v)).toEqual([200, 404]);
    expect(s.indexes()).toEqual([0n, 10n, 10n, 10n]);
  });
});

describe('blockingQuery: failures and backoff', () => {
  const unreachable = (): ConsulUnreachableError =>
    new ConsulUnreachableError('refused', 'cannot reach Consul (refused)');

  it('backs off exponentially (attempt 1, 2, 3…), capped at maxDelayMs, and starts over after a success', async () => {
    const s = script();
    const failures = [unreachable(), unreachable(), unreachable(), unreachable()];
    s.fail(...failures);
    s.ok(answer({ index: 10, body: { v: 1 } }));
    s.fail(unreachable());
    const q = start(s);
    await advance(5_000);

    // exp = min(400, 100·2^(n-1)) = 100, 200, 400, 400; with random 0.5: 3/4 of it.
    const errors = q.errors();
    expect(errors.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 1]);
    expect(errors.map((e) => e.retryInMs)).toEqual([75, 150, 300, 300, 75]);
    expect(errors.slice(0, 4).map((e) => e.error)).toEqual(failures);
    // Each retry waited its retryInMs: sends at 0, 75, 225, 525, 825 (the success), then at once.
    expect(s.times()).toEqual([0, 75, 225, 525, 825, 825, 900]);
    // Every read after a failure is non-blocking.
    expect(s.indexes()).toEqual([0n, 0n, 0n, 0n, 0n, 10n, 0n]);
    expect(q.results().map((r) => r.value.v)).toEqual([1]);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('wraps anything thrown that is not an SDK error as INVALID_RESPONSE, keeping it as the cause', async () => {
    const s = script();
    const boom = new TypeError('boom');
    s.fail(boom);
    const q = start(s);
    await advance();

    const [failure] = q.errors();
    expect(failure?.error).toBeInstanceOf(InvalidResponseError);
    expect(failure?.error.message).toContain('boom');
    expect(failure?.error.cause).toBe(boom);
  });

  it('waits permissionDeniedDelayMs after a 403 (PermissionDeniedError)', async () => {
    const s = script();
    s.ok(answer({ status: 403, index: 10, body: 'Permission denied' }));
    const q = start(s);
    await advance();

    const [failure] = q.errors();
    expect(failure?.error).toBeInstanceOf(PermissionDeniedError);
    expect(failure?.retryInMs).toBe(5_000);
    await advance(4_999);
    expect(s.calls).toHaveLength(1);
    await advance(1);
    expect(s.times()).toEqual([0, 5_000]);
    expect(s.indexes()).toEqual([0n, 0n]);
  });

  it('honours Retry-After of a ConsulHttpError from an answer (read throws it)', async () => {
    const s = script();
    s.ok(answer({ status: 429, index: 10, body: 'Too many requests', headers: { 'retry-after': '2' } }));
    const q = start(s);
    await advance();

    const [failure] = q.errors();
    expect(failure?.error).toBeInstanceOf(ConsulHttpError);
    expect((failure?.error as ConsulHttpError).retryAfterMs).toBe(2_000);
    expect(failure?.retryInMs).toBe(2_000);
    await advance(1_999);
    expect(s.calls).toHaveLength(1);
    await advance(1);
    expect(s.times()).toEqual([0, 2_000]);
  });

  it('honours Retry-After of a ConsulHttpError that send rejects with, over the exponential delay', async () => {
    const s = script();
    s.fail(new ConsulHttpError(503, 'Consul answered HTTP 503', 1_234));
    const q = start(s);
    await advance();

    const [failure] = q.errors();
    expect(failure?.error.status).toBe(503);
    expect(failure?.retryInMs).toBeGreaterThanOrEqual(1_234);
    expect(failure?.retryInMs).toBe(1_234);
    await advance(1_233);
    expect(s.calls).toHaveLength(1);
    await advance(1);
    expect(s.calls).toHaveLength(2);
  });
});

describe('blockingQuery: beforeNextRead', () => {
  it('waits for beforeNextRead after an emitted result before the next send, and not after an unchanged answer', async () => {
    const s = script();
    const same = answer({ index: 10, body: { v: 1 } });
    s.ok(same, same, same);
    let release: (() => void) | undefined;
    const beforeNextRead = vi.fn(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    const q = start(s, { beforeNextRead });
    await advance();

    expect(q.results()).toHaveLength(1);
    expect(beforeNextRead).toHaveBeenCalledTimes(1);
    // However long the joining reads take, the next read waits for them.
    await advance(60_000);
    expect(s.calls).toHaveLength(1);

    release?.();
    await advance();
    // The next answers are identical: no result, no wait for beforeNextRead, reads go on.
    expect(s.indexes()).toEqual([0n, 10n, 10n, 10n]);
    expect(beforeNextRead).toHaveBeenCalledTimes(1);
    expect(q.results()).toHaveLength(1);
  });

  it('does not wait when beforeNextRead returns undefined (no joining read pending)', async () => {
    const s = script();
    s.ok(answer({ index: 10, body: { v: 1 } }), answer({ index: 11, body: { v: 2 } }));
    const beforeNextRead = vi.fn((): Promise<void> | undefined => undefined);
    start(s, { beforeNextRead });
    await advance();

    expect(s.indexes()).toEqual([0n, 10n, 11n]);
    expect(beforeNextRead).toHaveBeenCalledTimes(2);
  });
});

describe('blockingQuery: unsubscribing and aborts', () => {
  it('aborts the read in flight on unsubscribe, sends nothing after, and never errors or completes', async () => {
    const s = script();
    s.ok(answer({ index: 10, body: { v: 1 } }));
    const q = start(s);
    await advance();

    expect(s.calls).toHaveLength(2);
    expect(s.calls.map((c) => c.abortedAtSend)).toEqual([false, false]);
    expect(s.calls[1]?.signal.aborted).toBe(false);

    q.subscription.unsubscribe();
    expect(s.calls[1]?.signal.aborted).toBe(true);
    // send rejects with RequestAbortedError, as the transport does: nothing comes of it.
    await advance(60_000);
    expect(s.calls).toHaveLength(2);
    expect(q.events).toHaveLength(1);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('emits nothing and sends nothing when a read in flight answers after unsubscribe', async () => {
    const s = script({ ignoreAbort: true });
    const read = vi.fn(readJson);
    const q = start(s, { read });
    await advance();
    expect(s.calls).toHaveLength(1);

    q.subscription.unsubscribe();
    s.held().resolve(answer({ index: 10, body: { v: 1 } }));
    await advance(60_000);

    expect(q.events).toEqual([]);
    expect(s.calls).toHaveLength(1);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('sends nothing more when unsubscribed during a backoff', async () => {
    const s = script();
    s.fail(new ConsulUnreachableError('refused', 'cannot reach Consul (refused)'));
    const q = start(s);
    await advance();
    expect(q.errors()).toHaveLength(1);

    q.subscription.unsubscribe();
    await advance(60_000);
    expect(s.calls).toHaveLength(1);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('sends nothing more when unsubscribed during a rate-limit wait', async () => {
    const s = script();
    const same = answer({ index: 10, body: { v: 1 } });
    s.ok(same, same, same, same);
    // burst 1: the second identical answer waits 1 s for a token.
    const q = start(s, { idleWakeups: { burst: 1, perSecond: 1 } });
    await advance();
    expect(s.calls).toHaveLength(3);

    q.subscription.unsubscribe();
    await advance(60_000);
    expect(s.calls).toHaveLength(3);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('sends nothing more when unsubscribed while waiting for beforeNextRead, even once it resolves', async () => {
    const s = script();
    s.ok(answer({ index: 10, body: { v: 1 } }));
    let release: (() => void) | undefined;
    const q = start(s, {
      beforeNextRead: () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    });
    await advance();

    q.subscription.unsubscribe();
    release?.();
    await advance(60_000);
    expect(s.calls).toHaveLength(1);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('a RequestAbortedError from send while still subscribed is a failure like any other: reported, then retried', async () => {
    const s = script();
    s.ok(answer({ index: 10, body: { v: 1 } }));
    s.fail(new RequestAbortedError());
    s.ok(answer({ index: 11, body: { v: 2 } }));
    const q = start(s);
    await advance(60_000);

    // Only the loop's own abort (unsubscribe) ends it; an abort from below must not kill the watch.
    expect(s.calls[1]?.signal.aborted).toBe(false);
    expect(q.events.map((e) => e.type)).toEqual(['result', 'error', 'result']);
    expect(s.calls[2]?.index).toBe(0n);
    expect(q.state).toEqual({ errored: undefined, completed: false });
  });

  it('a beforeNextRead that rejects or throws neither errors the query nor stops it', async () => {
    for (const beforeNextRead of [
      () => Promise.reject(new Error('join failed')),
      () => {
        throw new Error('join threw');
      },
    ]) {
      const s = script();
      s.ok(answer({ index: 10, body: { v: 1 } }));
      s.ok(answer({ index: 11, body: { v: 2 } }));
      const q = start(s, { beforeNextRead });
      await advance(1_000);
      expect(q.events.map((e) => e.type)).toEqual(['result', 'result']);
      expect(q.state).toEqual({ errored: undefined, completed: false });
      q.subscription.unsubscribe();
    }
  });

  it('an answer that arrives after unsubscribe is not read', async () => {
    const s = script({ ignoreAbort: true });
    const read = vi.fn(readJson);
    const q = start(s, { read });
    await advance();
    q.subscription.unsubscribe();
    s.held().resolve(answer({ index: 10, body: { v: 1 } }));
    await advance(1_000);
    expect(read).not.toHaveBeenCalled();
  });
});

describe('blockingQuery: telling each request (track)', () => {
  it('tells each request once, with how it ended: ok, not_found, an error code, an unreadable answer, aborted', async () => {
    const s = script();
    const told: Array<{
      blocking: boolean;
      index: bigint;
      outcome: string;
      statusCode?: number;
      resultIndex?: bigint;
    }> = [];
    const track: BlockingQueryOptions<Value>['track'] = (blocking, index) => (result) =>
      void told.push({
        blocking,
        index,
        outcome: result.outcome,
        ...(result.statusCode === undefined ? {} : { statusCode: result.statusCode }),
        ...(result.resultIndex === undefined ? {} : { resultIndex: result.resultIndex }),
      });
    const read = (res: ConsulResponse): Value => (res.status === 404 ? { v: 0 } : readJson(res));
    s.ok(answer({ index: 10, body: { v: 1 } }), answer({ index: 11, status: 404, body: '' }));
    s.fail(new ConsulUnreachableError('refused', 'connect ECONNREFUSED'));
    s.ok(
      answer({ index: 12, status: 403, body: 'Permission denied' }),
      answer({ index: 13, body: 'not json' }),
    );
    const q = start(s, { track, read });
    await advance(60_000);
    q.subscription.unsubscribe(); // the read held on the empty queue ends aborted
    await advance();

    expect(told).toEqual([
      { blocking: false, index: 0n, outcome: 'ok', statusCode: 200, resultIndex: 10n },
      { blocking: true, index: 10n, outcome: 'not_found', statusCode: 404, resultIndex: 11n },
      { blocking: true, index: 11n, outcome: 'CONSUL_UNREACHABLE' },
      { blocking: false, index: 0n, outcome: 'PERMISSION_DENIED', statusCode: 403 },
      { blocking: false, index: 0n, outcome: 'INVALID_RESPONSE', statusCode: 200 },
      { blocking: false, index: 0n, outcome: 'aborted' },
    ]);
  });
});
