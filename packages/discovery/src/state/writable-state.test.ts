import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type LeaderState, bigintReplacer, leaderStateSchema } from '@consul-leader/types';
import { sessionInfo } from '../test-fixtures.js';
import { InvalidDescriptorError } from '../errors.js';
import { MAX_WRITABLE_DEPTH } from '../config/defaults.js';
import { jsonOr, rememberRaw, unwritable, writableState } from './writable-state.js';

const deep = (n: number): unknown => JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown;
const consul = { index: 7n, lastContactMs: 0, knownLeader: true };
const leaderState = (node: unknown, raw?: string): LeaderState<unknown> => {
  const leader = {
    key: 'svc/a',
    node,
    session: sessionInfo('S1'),
    lockIndex: 1n,
    modifyIndex: 7n,
    createIndex: 5n,
    flags: 0n,
  };
  if (raw !== undefined) rememberRaw(leader, Buffer.from(raw).toString('base64'));
  return { status: 'leader', key: 'svc/a', leader, consul };
};
const State = leaderStateSchema(z.unknown());

describe('writableState', () => {
  it('keeps a state whose descriptor JSON.stringify writes (the same object)', () => {
    const state = leaderState({ host: 'h', port: 1, big: 2n ** 70n });
    expect(writableState(state, bigintReplacer)).toBe(state);
    const vacant: LeaderState<unknown> = { status: 'vacant', key: 'k', reason: 'no-session', consul };
    expect(writableState(vacant, bigintReplacer)).toBe(vacant);
  });

  it('shows a descriptor too deep to write as invalid, with the reason, the raw value and the entry', () => {
    const raw = '['.repeat(5000) + ']'.repeat(5000);
    const state = leaderState(deep(5000), raw);
    expect(() => JSON.stringify(state, bigintReplacer)).toThrow(RangeError);
    const shown = writableState(state, bigintReplacer);
    expect(shown.status).toBe('invalid');
    if (shown.status !== 'invalid') return;
    expect(shown.error).toBeInstanceOf(InvalidDescriptorError);
    expect(shown.error.code).toBe('INVALID_DESCRIPTOR');
    expect(shown.error.message).toMatch(/cannot be written as JSON: it is nested too deeply/);
    expect(shown.issues).toEqual([{ code: 'unwritable', message: shown.error.message, path: [] }]);
    expect(shown.raw).toBe(`${raw.slice(0, 4096)}…`);
    expect(shown.entry).toEqual({ key: 'svc/a', lockIndex: 1n, modifyIndex: 7n, createIndex: 5n, flags: 0n });
    expect(shown.session.id).toBe('S1');
    // What a browser receives validates with the shared schema.
    expect(State.parse(JSON.parse(JSON.stringify(shown, bigintReplacer)))).toMatchObject({
      status: 'invalid',
    });
  });

  it('replaces the last known leader of an unreachable state, keeping the outage', () => {
    const lastKnown = leaderState(deep(5000));
    if (lastKnown.status === 'unreachable') throw new Error('unexpected');
    const down: LeaderState<unknown> = {
      status: 'unreachable',
      key: 'svc/a',
      error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
      attempt: 3,
      retryInMs: 1000,
      lastKnown,
    };
    const shown = writableState(down, bigintReplacer);
    expect(shown).toMatchObject({
      status: 'unreachable',
      attempt: 3,
      lastKnown: { status: 'invalid', raw: '' },
    });
    expect(() => JSON.stringify(shown, bigintReplacer)).not.toThrow();
  });

  it('bounds the depth it calls writable at 1,000 levels, whatever the stack left', () => {
    expect(unwritable(deep(MAX_WRITABLE_DEPTH - 1), bigintReplacer)).toBeUndefined();
    expect(unwritable(deep(MAX_WRITABLE_DEPTH + 1), bigintReplacer)).toMatch(/more than 1000 levels/);
    // 100,000 levels are measured without a stack overflow.
    expect(unwritable(deep(100_000), bigintReplacer)).toMatch(/nested too deeply/);
  });

  it('says why other descriptors cannot be written (a cycle, a throwing toJSON)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(unwritable(cyclic, bigintReplacer)).toMatch(/circular/i);
    expect(
      unwritable(
        {
          toJSON: () => {
            throw new Error('nope');
          },
        },
        bigintReplacer,
      ),
    ).toBe('nope');
    expect(unwritable({ a: 1 }, bigintReplacer)).toBeUndefined();
  });
});

describe('jsonOr', () => {
  it('writes the value, or the fallback when the value cannot be written', () => {
    expect(jsonOr({ a: 1n }, bigintReplacer, () => 'unused')).toBe('{"a":"1"}');
    expect(jsonOr(deep(5000), bigintReplacer, () => ({ replaced: true }))).toBe('{"replaced":true}');
  });
});
