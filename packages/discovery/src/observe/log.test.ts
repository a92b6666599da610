import { describe, expect, it } from 'vitest';
import type { ConsulReadMeta, LeaderSession } from '@consul-leader/types';
import type { LeaderLogger } from '../config/options.js';
import {
  ConsulHttpError,
  ConsulUnreachableError,
  InvalidDescriptorError,
  type LeaderDiscoveryError,
  PermissionDeniedError,
} from '../errors.js';
import type { LeaderState } from '../state/states.js';
import { INVALID_VALUES_REMEMBERED, RAW_LOGGED_CHARS, createLogSink, formatDuration } from './log.js';
import type { FollowedUnit, TelemetrySink } from './telemetry.js';

type Level = 'debug' | 'info' | 'warn' | 'error';
interface Line {
  readonly level: Level;
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}
type State = LeaderState<unknown>;
type Settled = Exclude<State, { status: 'unreachable' }>;
type Unreachable = Extract<State, { status: 'unreachable' }>;

const KEY = 'svc/api/leader';
const TOKEN = 'b1gs3cr3t-0000-4000-8000-000000000000';
const consul: ConsulReadMeta = { index: 42n, lastContactMs: 0, knownLeader: true };
const keyUnit: FollowedUnit = { type: 'key', key: KEY, id: JSON.stringify(['key', KEY, TOKEN]) };
const prefixUnit: FollowedUnit = {
  type: 'prefix',
  key: 'svc/',
  id: JSON.stringify(['prefix', 'svc/', TOKEN]),
};

const sessionOf = (id: string): LeaderSession => ({
  id,
  name: 'lock',
  node: `node-${id}`,
  checks: ['serfHealth'],
  behavior: 'release',
  ttl: '',
  ttlMs: null,
  lockDelayMs: 0,
  createIndex: 9n,
  modifyIndex: 9n,
});

const leader = (sessionId: string, lockIndex = 1n, key = KEY): Settled => ({
  status: 'leader',
  key,
  leader: {
    key,
    lockIndex,
    modifyIndex: 12n,
    createIndex: 10n,
    flags: 0n,
    node: { host: `${sessionId}.example` },
    session: sessionOf(sessionId),
  },
  consul,
});
const vacant = (key = KEY): Settled => ({ status: 'vacant', key, reason: 'no-session', consul });
const invalid = (raw: string, modifyIndex = 20n, key = KEY): Settled => ({
  status: 'invalid',
  key,
  entry: { key, lockIndex: 2n, modifyIndex, createIndex: 10n, flags: 0n },
  session: sessionOf('S9'),
  raw,
  error: new InvalidDescriptorError('value cannot be decoded: not JSON', [
    { code: 'custom', message: 'not JSON', path: [] },
  ]),
  issues: [{ code: 'custom', message: 'not JSON', path: [] }],
  consul,
});
const unreachable = (
  attempt: number,
  error: LeaderDiscoveryError = new ConsulUnreachableError('refused', 'connect ECONNREFUSED 127.0.0.1:8500'),
  lastKnown: Settled | null = null,
  key = KEY,
): State => ({ status: 'unreachable', key, error, attempt, retryInMs: 100 * attempt, lastKnown });
const denied = (attempt: number): State =>
  unreachable(attempt, new PermissionDeniedError('Consul refused the read (403: Permission denied)'));

function setUp(unit: FollowedUnit = keyUnit): {
  lines: Line[];
  sink: TelemetrySink;
  tick(ms: number): void;
  tell(state: State, key?: string): void;
  of(level: Level): Line[];
} {
  const lines: Line[] = [];
  const method =
    (level: Level) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const logger: LeaderLogger = {
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
  };
  let clock = 1_000;
  const sink = createLogSink(logger, () => clock);
  sink.followed?.(unit, 1);
  return {
    lines,
    sink,
    tick: (ms) => {
      clock += ms;
    },
    // As the hub tells it: a state (not a prefix's unreachable keys: a prefix's outage is its
    // own), then whether the unit could be read.
    tell: (state, key = state.key) => {
      if (unit.type === 'key' || state.status !== 'unreachable') sink.state?.(unit, key, state);
      const { error, attempt, retryInMs } =
        state.status === 'unreachable' ? state : ({} as Partial<Unreachable>);
      sink.reachable?.(unit, error && attempt && retryInMs ? { error, attempt, retryInMs } : null);
    },
    of: (level) => lines.filter((line) => line.level === level),
  };
}

describe('createLogSink: outages', () => {
  it('logs one warn when an outage starts and one info with its length when Consul answers', () => {
    const t = setUp();
    t.tell(leader('S1'));
    const lastKnown = leader('S1');
    for (let attempt = 1; attempt <= 20; attempt += 1) {
      t.tell(unreachable(attempt, undefined, lastKnown));
      t.tick(60);
    }
    t.tell(leader('S1'));
    expect(t.of('warn')).toEqual([
      {
        level: 'warn',
        obj: {
          key: KEY,
          type: 'key',
          code: 'CONSUL_UNREACHABLE',
          error: 'connect ECONNREFUSED 127.0.0.1:8500',
          attempt: 1,
          retryInMs: 100,
          durationMs: 0,
          lastKnown: 'leader',
          lastKnownSessionId: 'S1',
        },
        msg: 'Consul cannot be read for key "svc/api/leader": connect ECONNREFUSED 127.0.0.1:8500 (CONSUL_UNREACHABLE); retrying in 100 ms',
      },
    ]);
    expect(t.of('info')).toEqual([
      {
        level: 'info',
        obj: {
          key: KEY,
          type: 'key',
          durationMs: 1_200,
          attempts: 20,
          code: 'CONSUL_UNREACHABLE',
          resolved: true,
          state: 'leader',
        },
        msg: 'Consul answers again for key "svc/api/leader" after 1.2 s (20 failed reads)',
      },
    ]);
    expect(t.of('error')).toEqual([]);
    // The same leader before and after: one debug line (the first state), none for the outage.
    expect(t.of('debug')).toHaveLength(1);
  });

  it('logs each outage of a key once, a second one included', () => {
    const t = setUp();
    t.tell(vacant());
    t.tell(unreachable(1));
    t.tell(unreachable(2));
    t.tell(vacant());
    t.tell(unreachable(1, new ConsulHttpError(500, 'Consul answered 500 Internal Server Error')));
    t.tick(2_500);
    t.tell(vacant());
    expect(t.of('warn').map((l) => l.obj.code)).toEqual(['CONSUL_UNREACHABLE', 'CONSUL_HTTP_ERROR']);
    expect(t.of('warn')[1]?.obj.statusCode).toBe(500);
    expect(t.of('info').map((l) => [l.obj.attempts, l.obj.durationMs, l.msg])).toEqual([
      [2, 0, 'Consul answers again for key "svc/api/leader" after 0 ms (2 failed reads)'],
      [1, 2_500, 'Consul answers again for key "svc/api/leader" after 2.5 s (1 failed read)'],
    ]);
  });

  it('an outage of a key never read yet warns without a last known state', () => {
    const t = setUp();
    t.tell(unreachable(1));
    expect(t.of('warn')[0]?.obj.lastKnown).toBeNull();
    t.tell(leader('S1'));
    expect(t.of('info')).toHaveLength(1);
    expect(t.of('debug').map((l) => l.msg)).toEqual([
      'Key "svc/api/leader" is led by session S1 on Consul node "node-S1"',
    ]);
  });

  it('a run of PERMISSION_DENIED logs one error, no warn, and an info when it ends', () => {
    const t = setUp();
    t.tell(leader('S1'));
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      t.tell(denied(attempt));
      t.tick(10_000);
    }
    t.tell(leader('S1'));
    expect(t.of('warn')).toEqual([]);
    expect(t.of('error')).toEqual([
      {
        level: 'error',
        obj: {
          key: KEY,
          type: 'key',
          code: 'PERMISSION_DENIED',
          statusCode: 403,
          error: 'Consul refused the read (403: Permission denied)',
          attempt: 1,
          retryInMs: 100,
          durationMs: 0,
          lastKnown: null,
        },
        msg:
          'Consul denies reading key "svc/api/leader": Consul refused the read (403: Permission denied) ' +
          '(PERMISSION_DENIED: check the ACL token and its policy); retrying in 100 ms',
      },
    ]);
    expect(t.of('info').map((l) => [l.obj.durationMs, l.obj.code, l.msg])).toEqual([
      [
        50_000,
        'PERMISSION_DENIED',
        'Consul answers again for key "svc/api/leader" after 50.0 s (5 failed reads)',
      ],
    ]);
  });

  it('an outage mixing failures logs at most one warn and one error', () => {
    const t = setUp();
    t.tell(unreachable(1));
    t.tick(1_500);
    t.tell(denied(2));
    t.tell(unreachable(3));
    t.tell(denied(4));
    t.tick(500);
    t.tell(vacant());
    expect(t.of('warn')).toHaveLength(1);
    expect(t.of('error').map((l) => [l.obj.durationMs, l.obj.attempt])).toEqual([[1_500, 2]]);
    expect(t.of('error')[0]?.msg).toContain('Consul denies reading key "svc/api/leader" (for 1.5 s): ');
    expect(t.of('info').map((l) => [l.obj.durationMs, l.obj.attempts, l.obj.code])).toEqual([
      [2_000, 4, 'PERMISSION_DENIED'],
    ]);
  });

  it('a key no longer followed in an outage logs an unresolved info, then is forgotten', () => {
    const t = setUp();
    t.tell(unreachable(1));
    t.tell(unreachable(2));
    t.tick(3_000);
    t.sink.followed?.(keyUnit, -1);
    expect(t.of('info')).toEqual([
      {
        level: 'info',
        obj: {
          key: KEY,
          type: 'key',
          durationMs: 3_000,
          attempts: 2,
          code: 'CONSUL_UNREACHABLE',
          resolved: false,
        },
        msg: 'No longer following key "svc/api/leader", unread for 3.0 s (2 failed reads)',
      },
    ]);
    t.sink.followed?.(keyUnit, 1);
    t.tell(leader('S1'));
    expect(t.of('info')).toHaveLength(1);
  });

  it("a prefix's outage is one outage, not one per key", () => {
    const t = setUp(prefixUnit);
    const keys = ['svc/a', 'svc/b', 'svc/c'];
    for (const key of keys) t.tell(leader('S1', 1n, key));
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      for (const key of keys) t.tell(unreachable(attempt, undefined, leader('S1', 1n, key), key));
      t.tick(100);
    }
    for (const key of keys) t.tell(leader('S1', 1n, key));
    expect(t.of('warn')).toHaveLength(1);
    expect(t.of('warn')[0]?.obj).toMatchObject({ key: 'svc/', type: 'prefix', attempt: 1 });
    expect(t.of('warn')[0]?.obj).not.toHaveProperty('lastKnown');
    expect(t.of('warn')[0]?.msg).toContain('Consul cannot be read for prefix "svc/": ');
    expect(t.of('info').map((l) => [l.obj.key, l.obj.attempts, l.obj.durationMs])).toEqual([
      ['svc/', 4, 400],
    ]);
    expect(t.of('debug').map((l) => [l.obj.key, l.obj.prefix])).toEqual(keys.map((key) => [key, 'svc/']));
  });

  it("a prefix's outage ends when the prefix is read again", () => {
    const t = setUp(prefixUnit);
    t.tell(unreachable(1, undefined, null, 'svc/a'));
    t.tell(unreachable(2, undefined, null, 'svc/a'));
    expect(t.of('info')).toEqual([]);
    t.tell(vacant('svc/b'));
    expect(t.of('warn')).toHaveLength(1);
    expect(t.of('info')).toHaveLength(1);
  });

  it("a prefix's outage told for the prefix itself ends with any of its keys read again", () => {
    const t = setUp(prefixUnit);
    t.tell(unreachable(1, undefined, null, 'svc/'));
    t.tell(unreachable(2, undefined, null, 'svc/'));
    t.tick(700);
    t.tell(vacant('svc/a'));
    expect(t.of('warn')).toHaveLength(1);
    expect(t.of('info').map((l) => [l.obj.key, l.obj.attempts, l.obj.durationMs])).toEqual([
      ['svc/', 2, 700],
    ]);
  });

  it('outages of two units are apart', () => {
    const t = setUp();
    const other: FollowedUnit = { type: 'key', key: 'other', id: 'other-id' };
    t.sink.followed?.(other, 1);
    t.tell(unreachable(1));
    const failure = unreachable(1, undefined, null, 'other') as Unreachable;
    t.sink.state?.(other, 'other', failure);
    t.sink.reachable?.(other, { error: failure.error, attempt: 1, retryInMs: failure.retryInMs });
    t.tell(vacant());
    expect(t.of('warn').map((l) => l.obj.key)).toEqual([KEY, 'other']);
    expect(t.of('info').map((l) => l.obj.key)).toEqual([KEY]);
  });
});

describe('createLogSink: invalid values', () => {
  it('warns once per distinct value', () => {
    const t = setUp();
    t.tell(invalid('not json'));
    t.tell(invalid('not json', 21n)); // written again, same bytes
    t.tell(invalid('{"host":'));
    t.tell(vacant());
    t.tell(invalid('not json', 30n));
    t.tell(invalid('{"host":', 31n));
    expect(t.of('warn')).toEqual([
      {
        level: 'warn',
        obj: {
          key: KEY,
          code: 'INVALID_DESCRIPTOR',
          error: 'value cannot be decoded: not JSON',
          issues: [{ path: '', message: 'not JSON' }],
          sessionId: 'S9',
          sessionNode: 'node-S9',
          lockIndex: '2',
          modifyIndex: '20',
          raw: 'not json',
          rawLength: 8,
        },
        msg: 'Key "svc/api/leader" holds a value that is not a valid descriptor (session S9 on Consul node "node-S9"): value cannot be decoded: not JSON',
      },
      expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ raw: '{"host":' }) }),
    ]);
  });

  it('cuts the raw text it logs', () => {
    const t = setUp();
    t.tell(invalid('x'.repeat(4_096)));
    const obj = t.of('warn')[0]?.obj;
    expect(obj?.raw).toBe(`${'x'.repeat(RAW_LOGGED_CHARS)}…`);
    expect(obj?.rawLength).toBe(4_096);
  });

  it('remembers a bounded number of values per unit, the least recently seen forgotten', () => {
    const t = setUp();
    for (let i = 0; i < INVALID_VALUES_REMEMBERED; i += 1) t.tell(invalid(`bad ${i}`));
    t.tell(invalid('bad 0')); // seen again: now the most recent
    t.tell(invalid('one more')); // forgets 'bad 1'
    expect(t.of('warn')).toHaveLength(INVALID_VALUES_REMEMBERED + 1);
    t.tell(invalid('bad 0'));
    expect(t.of('warn')).toHaveLength(INVALID_VALUES_REMEMBERED + 1);
    t.tell(invalid('bad 1'));
    expect(t.of('warn')).toHaveLength(INVALID_VALUES_REMEMBERED + 2);
  });

  it('tells the same value of two keys of a prefix apart', () => {
    const t = setUp(prefixUnit);
    t.tell(invalid('bad', 20n, 'svc/a'));
    t.tell(invalid('bad', 20n, 'svc/b'));
    expect(t.of('warn').map((l) => [l.obj.key, l.obj.prefix])).toEqual([
      ['svc/a', 'svc/'],
      ['svc/b', 'svc/'],
    ]);
  });
});

describe('createLogSink: leader changes', () => {
  it('logs who leads at debug: the first state, each new leader, each loss', () => {
    const t = setUp();
    t.tell(leader('S1'));
    t.tell(leader('S1')); // same leader, another write: nothing
    t.tell(leader('S2', 2n));
    t.tell(leader('S2', 3n)); // acquired again
    t.tell(vacant());
    t.tell(invalid('bad')); // still no leader
    t.tell(leader('S3', 4n));
    t.tell(invalid('bad', 21n));
    expect(t.of('debug').map((l) => l.msg)).toEqual([
      'Key "svc/api/leader" is led by session S1 on Consul node "node-S1"',
      'Key "svc/api/leader" is led by session S2 on Consul node "node-S2"',
      'Key "svc/api/leader" is led by session S2 on Consul node "node-S2"',
      'Key "svc/api/leader" has no leader (no-session)',
      'Key "svc/api/leader" is led by session S3 on Consul node "node-S3"',
      'Key "svc/api/leader" has no leader (invalid value)',
    ]);
    expect(t.of('debug')[1]?.obj).toEqual({
      key: KEY,
      state: 'leader',
      sessionId: 'S2',
      sessionName: 'lock',
      sessionNode: 'node-S2',
      lockIndex: '2',
      node: { host: 'S2.example' },
      previousSessionId: 'S1',
    });
    expect(t.of('debug')[3]?.obj).toEqual({
      key: KEY,
      state: 'vacant',
      reason: 'no-session',
      previousSessionId: 'S2',
    });
    expect(t.of('debug')[5]?.obj).toEqual({
      key: KEY,
      state: 'invalid',
      sessionId: 'S9',
      previousSessionId: 'S3',
    });
  });

  it('logs a key first read without a leader, then nothing until it has one', () => {
    const t = setUp();
    t.tell(vacant());
    t.tell(invalid('bad'));
    t.tell(vacant());
    expect(t.of('debug').map((l) => l.msg)).toEqual(['Key "svc/api/leader" has no leader (no-session)']);
  });

  it('logs a leader that changed during an outage once Consul answers', () => {
    const t = setUp();
    t.tell(leader('S1'));
    t.tell(unreachable(1, undefined, leader('S1')));
    t.tell(leader('S2', 2n));
    expect(t.of('debug').map((l) => l.obj.sessionId)).toEqual(['S1', 'S2']);
  });
});

describe('createLogSink: safety', () => {
  it('a logger that throws breaks nothing', () => {
    const throwing = (): never => {
      throw new Error('broken logger');
    };
    const sink = createLogSink({ debug: throwing, info: throwing, warn: throwing, error: throwing });
    expect(() => {
      sink.followed?.(keyUnit, 1);
      sink.state?.(keyUnit, KEY, leader('S1'));
      sink.state?.(keyUnit, KEY, unreachable(1));
      sink.state?.(keyUnit, KEY, denied(2));
      sink.state?.(keyUnit, KEY, invalid('bad'));
      sink.followed?.(keyUnit, -1);
    }).not.toThrow();
  });

  it('keeps calling a logger that threw once', () => {
    let calls = 0;
    const sink = createLogSink({
      debug: () => {
        calls += 1;
        throw new Error('once');
      },
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    });
    sink.state?.(keyUnit, KEY, leader('S1'));
    sink.state?.(keyUnit, KEY, leader('S2'));
    expect(calls).toBe(2);
  });

  it('calls the logger as a method (pino reads `this`)', () => {
    const seen: unknown[] = [];
    class Logger {
      private readonly sink = seen;
      debug(obj: object): void {
        this.sink.push(obj);
      }
      info(obj: object): void {
        this.sink.push(obj);
      }
      warn(obj: object): void {
        this.sink.push(obj);
      }
      error(obj: object): void {
        this.sink.push(obj);
      }
    }
    const sink = createLogSink(new Logger());
    sink.state?.(keyUnit, KEY, leader('S1'));
    expect(seen).toHaveLength(1);
  });

  it("never logs a unit's id (it holds the read scope's token)", () => {
    const t = setUp(prefixUnit);
    t.tell(leader('S1', 1n, 'svc/a'));
    t.tell(unreachable(1, undefined, null, 'svc/a'));
    t.tell(denied(2), 'svc/a');
    t.tell(invalid('bad', 20n, 'svc/a'));
    t.sink.followed?.(prefixUnit, -1);
    expect(t.lines.length).toBeGreaterThanOrEqual(5);
    const text = JSON.stringify(t.lines, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    expect(text).not.toContain(TOKEN);
  });

  it('objects carry no bigint (a JSON.stringify logger must not throw)', () => {
    const t = setUp();
    t.tell(invalid('bad'));
    t.tell(unreachable(1));
    t.tell(leader('S1'));
    // The descriptor (`node`) is the user's: the rest is the SDK's.
    for (const line of t.lines) expect(() => JSON.stringify({ ...line.obj, node: null })).not.toThrow();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [840.4, '840 ms'],
    [1_000, '1.0 s'],
    [1_234, '1.2 s'],
    [59_949, '59.9 s'],
    [59_950, '1 min 0 s'],
    [185_000, '3 min 5 s'],
    [7_800_000, '2 h 10 min'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
