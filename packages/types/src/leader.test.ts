import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import {
  bigintReplacer,
  leaderSchema,
  leaderStateSchema,
  type LeaderSession,
  type LeaderState,
  type LeaderStateLeader,
} from './leader.js';

const node = z.object({ host: z.string(), port: z.number().int() });
type Node = z.infer<typeof node>;

const session: LeaderSession = {
  id: 'adf4238a-882b-9ddc-4a9d-5b6758e4159e',
  name: 'consul-lock',
  node: 'node-1',
  checks: ['serfHealth'],
  behavior: 'release',
  ttl: '15s',
  ttlMs: 15_000,
  lockDelayMs: 15_000,
  createIndex: 13n,
  modifyIndex: 13n,
};

const consul = { index: 18446744073709551615n, lastContactMs: 0, knownLeader: true };

const leaderState: LeaderStateLeader<Node> = {
  status: 'leader',
  key: 'service/api/leader',
  leader: {
    key: 'service/api/leader',
    lockIndex: 1n,
    modifyIndex: 9007199254740993n,
    createIndex: 14n,
    flags: 3304740253564472344n,
    node: { host: '10.0.0.7', port: 8080 },
    session,
  },
  consul,
};

/** What a browser receives from a server relaying the state. */
function relay(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, bigintReplacer));
}

describe('bigintReplacer', () => {
  it('writes bigints as exact decimal strings and leaves other values alone', () => {
    expect(JSON.stringify({ a: 3304740253564472344n, b: 1, c: 'x', d: null }, bigintReplacer)).toBe(
      '{"a":"3304740253564472344","b":1,"c":"x","d":null}',
    );
  });

  it('makes states serialisable (plain JSON.stringify throws on bigint)', () => {
    expect(() => JSON.stringify(leaderState)).toThrow(TypeError);
    expect(() => JSON.stringify(leaderState, bigintReplacer)).not.toThrow();
  });
});

describe('leaderStateSchema', () => {
  const schema = leaderStateSchema(node);

  it('accepts a leader state after a JSON round trip, with bigints back as bigint', () => {
    const parsed = schema.parse(relay(leaderState));
    expect(parsed).toEqual(leaderState);
    if (parsed.status !== 'leader') throw new Error('expected a leader state');
    expect(typeof parsed.leader.flags).toBe('bigint');
    expect(parsed.leader.flags).toBe(3304740253564472344n);
    expect(parsed.leader.modifyIndex).toBe(9007199254740993n);
    expect(parsed.consul.index).toBe(18446744073709551615n);
    expect(parsed.leader.session.createIndex).toBe(13n);
  });

  it('accepts the original state with bigints too', () => {
    expect(schema.parse(leaderState)).toEqual(leaderState);
  });

  it('accepts vacant, invalid and unreachable states after a round trip', () => {
    const vacant: LeaderState<Node> = { status: 'vacant', key: 'k', reason: 'session-gone', consul };
    const invalid: LeaderState<Node> = {
      status: 'invalid',
      key: 'k',
      entry: { key: 'k', lockIndex: 2n, modifyIndex: 30n, createIndex: 14n, flags: 0n },
      session,
      raw: '{"host":1}',
      error: { code: 'INVALID_DESCRIPTOR', message: 'value does not match' },
      issues: [{ code: 'invalid_type', message: 'expected string', path: ['host'] }],
      consul,
    };
    const unreachable: LeaderState<Node> = {
      status: 'unreachable',
      key: 'k',
      error: { code: 'CONSUL_HTTP_ERROR', message: 'Consul answered HTTP 500', status: 500 },
      attempt: 3,
      retryInMs: 1000,
      lastKnown: leaderState,
    };
    const orphan: LeaderState<Node> = { ...unreachable, lastKnown: null };
    for (const state of [vacant, invalid, unreachable, orphan]) {
      expect(schema.parse(relay(state))).toEqual(state);
    }
  });

  it('checks the descriptor with the given schema', () => {
    const bad = relay({ ...leaderState, leader: { ...leaderState.leader, node: { host: 1, port: 'x' } } });
    const result = schema.safeParse(bad);
    expect(result.success).toBe(false);
  });

  it('refuses an unknown status, a bad vacant reason and a bigint written as a float', () => {
    expect(schema.safeParse({ ...(relay(leaderState) as object), status: 'leading' }).success).toBe(false);
    expect(
      schema.safeParse({ status: 'vacant', key: 'k', reason: 'gone', consul: relay(consul) }).success,
    ).toBe(false);
    expect(
      schema.safeParse({
        status: 'vacant',
        key: 'k',
        reason: 'no-session',
        consul: { ...consul, index: 1.5 },
      }).success,
    ).toBe(false);
  });

  it('refuses an unreachable state whose attempt is 0', () => {
    const state = {
      status: 'unreachable',
      key: 'k',
      error: { code: 'X', message: 'm' },
      attempt: 0,
      retryInMs: 1,
      lastKnown: null,
    };
    expect(schema.safeParse(state).success).toBe(false);
    expect(schema.safeParse({ ...state, attempt: 1 }).success).toBe(true);
  });

  it('round-trips leaders with random uint64 fields exactly', () => {
    const uint64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const leaders = leaderSchema(node);
    fc.assert(
      fc.property(
        uint64,
        uint64,
        uint64,
        uint64,
        uint64,
        (flags, lockIndex, modifyIndex, createIndex, index) => {
          const state: LeaderStateLeader<Node> = {
            ...leaderState,
            leader: { ...leaderState.leader, flags, lockIndex, modifyIndex, createIndex },
            consul: { ...consul, index },
          };
          expect(schema.parse(relay(state))).toEqual(state);
          expect(leaders.parse(relay(state.leader))).toEqual(state.leader);
        },
      ),
    );
  });
});
