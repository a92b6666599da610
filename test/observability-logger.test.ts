/**
 * The `logger` option against a real agent, with the fault proxy in front: an outage of 20
 * retries logs one `warn` and one `info` with its length, a run of 403s one `error` and no
 * `warn`, each distinct invalid value one `warn`, and leader changes `debug` lines. No line
 * carries the token or the basic-auth credential the discovery sends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  type LeaderState,
  type RetryPolicy,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { useAgent } from './support/agent.js';
import { acquire, createSession, release } from './support/contender.js';
import type { ConsulProxy, ProxiedRequest } from './support/proxy.js';
import { type Recorder, record, until } from './support/recorder.js';
import { failOnUnhandledRejections } from './support/unhandled.js';

const Node = z.object({ host: z.string() });
type State = LeaderState<z.output<typeof Node>>;
type Level = 'debug' | 'info' | 'warn' | 'error';
/** The option's type (`LeaderLogger`, not exported from the package's entry yet). */
type LeaderLogger = NonNullable<LeaderDiscoveryOptions['logger']>;

interface Line {
  readonly level: Level;
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** Retries in a few ms, so an outage of 20 of them is short; 403s retried as fast. */
const RETRY = {
  initialDelayMs: 5,
  maxDelayMs: 20,
  permissionDeniedDelayMs: 20,
} as const satisfies Partial<RetryPolicy>;
const RETRIES = 20;
/** Sent by the discovery (a dev agent without ACLs ignores both): never in a log line. */
const TOKEN = 'f00dbabe-5ec2-4e7a-8000-0123456789ab';
const PASSWORD = 'hunter2-basic-auth';

const env = useAgent({ proxy: true });
const uniqueKey = (): string => env.uniqueKey('observability-logger');
const kvPath = (key: string): string => `/v1/kv/${key}`;
const kvRequests = (key: string): ProxiedRequest[] =>
  env.proxy.requests.filter((r) => r.path === kvPath(key));

const discoveries: LeaderDiscovery[] = [];

failOnUnhandledRejections();
afterEach(() => {
  env.proxy.rule = undefined;
  for (const discovery of discoveries.splice(0)) discovery.close();
});

/** A logger that records every line (as pino would get it). */
function recordingLogger(): LeaderLogger & { lines: Line[]; of(level: Level): Line[] } {
  const lines: Line[] = [];
  const method =
    (level: Level) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return {
    lines,
    of: (level) => lines.filter((line) => line.level === level),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
  };
}

function discoveryWith(logger: LeaderLogger): LeaderDiscovery {
  const discovery = createLeaderDiscovery({
    consul: { host: env.proxy.host, port: env.proxy.port },
    wait: '2s',
    requestTimeout: '2s',
    retry: RETRY,
    token: TOKEN,
    httpAuth: { username: 'ops', password: PASSWORD },
    logger,
  });
  discoveries.push(discovery);
  return discovery;
}

/** A key led by a fresh session, followed with `watch()`, its blocking read in flight. */
async function ledKey(
  logger: LeaderLogger,
  value: string = JSON.stringify({ host: 'a' }),
): Promise<{ key: string; session: string; states: Recorder<State> }> {
  const key = uniqueKey();
  const session = await createSession(env.consul, { name: 'a' });
  expect(await acquire(env.consul, key, session, value)).toBe(true);
  const states = record(discoveryWith(logger).watch(key, { schema: Node }));
  await states.next((s) => s.status !== 'unreachable');
  await blockedRead(key);
  return { key, session, states };
}

const blockedRead = (key: string): Promise<void> =>
  until(
    'a blocking read in flight',
    () => env.proxy.inFlight(kvPath(key)) === 1 && kvRequests(key).at(-1)?.query.has('index') === true,
  );

/**
 * Fails every read of `key` with `fault` from now on, and wakes the blocked read (its
 * answer was on its way before the fault) so the next read meets it.
 */
async function startFault(
  key: string,
  session: string,
  fault: NonNullable<ConsulProxy['rule']>,
  wakeValue: string,
): Promise<void> {
  env.proxy.rule = (req) => (req.path === kvPath(key) ? fault(req) : undefined);
  expect(await acquire(env.consul, key, session, wakeValue)).toBe(true);
}

/** Every line's text, its descriptors and errors included (bigints as strings). */
const allText = (lines: Line[]): string =>
  JSON.stringify(lines, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

describe('the logger option', () => {
  it(`logs an outage of ${RETRIES} retries as one warn and one info with its length`, async () => {
    const logger = recordingLogger();
    const { key, session, states } = await ledKey(logger);
    const from = states.values.length;
    await startFault(key, session, () => ({ action: 'reset' }), JSON.stringify({ host: 'a', woken: 1 }));
    // The answer is checked where the recorder gets it: the rule is lifted before the next retry.
    await states.next((s) => s.status === 'unreachable' && s.attempt >= RETRIES, { from });
    env.proxy.rule = undefined;
    await states.next((s) => s.status === 'leader', { from: states.values.length });

    const failures = states.values.filter((s) => s.status === 'unreachable');
    const attempts = failures.map((s) => (s.status === 'unreachable' ? s.attempt : 0));
    expect(attempts).toEqual(Array.from({ length: RETRIES }, (_, i) => i + 1));

    expect(logger.of('warn')).toHaveLength(1);
    expect(logger.of('info')).toHaveLength(1);
    expect(logger.of('error')).toEqual([]);
    const [warn] = logger.of('warn');
    const [info] = logger.of('info');
    expect(warn?.obj).toMatchObject({
      key,
      type: 'key',
      code: 'CONSUL_UNREACHABLE',
      attempt: 1,
      durationMs: 0,
      lastKnown: 'leader',
      lastKnownSessionId: session,
    });
    expect(warn?.msg).toMatch(
      new RegExp(
        `^Consul cannot be read for key "${key}": .+ \\(CONSUL_UNREACHABLE\\); retrying in \\d+ ms$`,
      ),
    );
    expect(info?.obj).toMatchObject({
      key,
      type: 'key',
      attempts: RETRIES,
      code: 'CONSUL_UNREACHABLE',
      resolved: true,
      state: 'leader',
    });
    // At least the sleeps between the 20 reads (equal jitter: half of each delay, at least).
    const slept = Array.from(
      { length: RETRIES - 1 },
      (_, i) => Math.min(RETRY.maxDelayMs, RETRY.initialDelayMs * 2 ** i) / 2,
    ).reduce((a, b) => a + b, 0);
    const durationMs = info?.obj.durationMs;
    expect(typeof durationMs).toBe('number');
    expect(durationMs).toBeGreaterThanOrEqual(Math.floor(slept));
    expect(info?.msg).toMatch(
      new RegExp(
        `^Consul answers again for key "${key}" after \\d+(\\.\\d)? m?s \\(${RETRIES} failed reads\\)$`,
      ),
    );
    expect(allText(logger.lines)).not.toContain(TOKEN);
    expect(allText(logger.lines)).not.toContain(PASSWORD);
  });

  it('logs a run of permission denials as one error, no warn, and an info when it ends', async () => {
    const logger = recordingLogger();
    const { key, session, states } = await ledKey(logger);
    const from = states.values.length;
    await startFault(
      key,
      session,
      () => ({
        action: 'respond',
        status: 403,
        headers: { 'content-type': 'text/plain' },
        body: 'Permission denied',
      }),
      JSON.stringify({ host: 'a', woken: 2 }),
    );
    await states.next((s) => s.status === 'unreachable' && s.attempt >= 5, { from });
    env.proxy.rule = undefined;
    await states.next((s) => s.status === 'leader', { from: states.values.length });

    const denials = states.values.filter((s) => s.status === 'unreachable');
    expect(denials.every((s) => s.status === 'unreachable' && s.error.code === 'PERMISSION_DENIED')).toBe(
      true,
    );
    expect(logger.of('warn')).toEqual([]);
    expect(logger.of('error')).toHaveLength(1);
    expect(logger.of('error')[0]?.obj).toMatchObject({
      key,
      type: 'key',
      code: 'PERMISSION_DENIED',
      statusCode: 403,
      attempt: 1,
      durationMs: 0,
    });
    expect(logger.of('error')[0]?.msg).toContain(`Consul denies reading key "${key}": `);
    expect(logger.of('info')).toHaveLength(1);
    expect(logger.of('info')[0]?.obj).toMatchObject({
      key,
      code: 'PERMISSION_DENIED',
      attempts: denials.length,
      resolved: true,
    });
    expect(allText(logger.lines)).not.toContain(TOKEN);
    expect(allText(logger.lines)).not.toContain(PASSWORD);
  });

  it('warns once per distinct invalid value', async () => {
    const logger = recordingLogger();
    const { key, session, states } = await ledKey(logger, 'not json');
    expect(states.values.at(-1)).toMatchObject({ status: 'invalid', raw: 'not json' });
    const write = async (value: string): Promise<void> => {
      const from = states.values.length;
      expect(await acquire(env.consul, key, session, value)).toBe(true);
      await states.next((s) => s.status === 'invalid' && s.raw === value, { from });
    };
    await write('{"host": 7}');
    await write('not json'); // written again: the same bytes
    await write('{"host": 7}');

    expect(logger.of('warn').map((line) => line.obj.raw)).toEqual(['not json', '{"host": 7}']);
    expect(logger.of('warn')[1]?.obj).toMatchObject({
      key,
      code: 'INVALID_DESCRIPTOR',
      sessionId: session,
      rawLength: 11,
    });
    expect(logger.of('warn')[1]?.msg).toMatch(
      new RegExp(
        `^Key "${key}" holds a value that is not a valid descriptor \\(session ${session} on Consul node `,
      ),
    );
    expect(logger.of('error')).toEqual([]);
    expect(logger.of('info')).toEqual([]);
  });

  it('logs leader changes at debug', async () => {
    const logger = recordingLogger();
    const { key, session: a, states } = await ledKey(logger);
    let from = states.values.length;
    expect(await release(env.consul, key, a)).toBe(true);
    await states.next((s) => s.status === 'vacant', { from });
    const b = await createSession(env.consul, { name: 'b' });
    from = states.values.length;
    expect(await acquire(env.consul, key, b, JSON.stringify({ host: 'b' }))).toBe(true);
    await states.next((s) => s.status === 'leader' && s.leader.session.id === b, { from });
    // The same leader writing its descriptor again: no line.
    from = states.values.length;
    expect(await acquire(env.consul, key, b, JSON.stringify({ host: 'b', port: 1 }))).toBe(true);
    await states.next((s) => s.status === 'leader' && s.leader.session.id === b, { from });

    expect(logger.of('debug').map((line) => [line.obj.state, line.obj.sessionId, line.obj.reason])).toEqual([
      ['leader', a, undefined],
      ['vacant', undefined, 'no-session'],
      ['leader', b, undefined],
    ]);
    expect(logger.of('debug')[0]?.obj).toMatchObject({ key, sessionName: 'a', node: { host: 'a' } });
    expect(logger.of('debug')[1]?.obj).toMatchObject({ key, previousSessionId: a });
    expect(logger.of('debug')[2]?.msg).toMatch(
      new RegExp(`^Key "${key}" is led by session ${b} on Consul node "[^"]+"$`),
    );
    expect(logger.lines.filter((line) => line.level !== 'debug')).toEqual([]);
    expect(allText(logger.lines)).not.toContain(TOKEN);
  });

  it('a logger that throws does not break the streams', async () => {
    const throwing = (): never => {
      throw new Error('broken logger');
    };
    const key = uniqueKey();
    const session = await createSession(env.consul, { name: 'a' });
    expect(await acquire(env.consul, key, session, 'not json')).toBe(true);
    const states = record(
      discoveryWith({ debug: throwing, info: throwing, warn: throwing, error: throwing }).watch(key, {
        schema: Node,
      }),
    );
    await states.next((s) => s.status === 'invalid');
    expect(await acquire(env.consul, key, session, JSON.stringify({ host: 'a' }))).toBe(true);
    await states.next((s) => s.status === 'leader');
    expect(states.errors).toEqual([]);
  });
});
