import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import type { ConsulReadMeta, Leader, LeaderSession } from '@consul-leader/types';
import { ConsulUnreachableError, InvalidDescriptorError } from '../errors.js';
import type { KvEntry } from '../wire/kv.js';
import type { KeyEvent, KeySnapshot } from '../key/key-snapshot.js';
import { type Decoding, sameLeader, sameState, stateMapper, toSettledState } from './to-state.js';

const KEY = 'service/api/leader';
const consul: ConsulReadMeta = { index: 42n, lastContactMs: 3, knownLeader: true };
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

const session: LeaderSession = {
  id: 'S1',
  name: 'lock',
  node: 'node-1',
  checks: ['serfHealth'],
  behavior: 'release',
  ttl: '',
  ttlMs: null,
  lockDelayMs: 15_000,
  createIndex: 9n,
  modifyIndex: 9n,
};

const entry = (value: string | null, over: Partial<KvEntry> = {}): KvEntry => ({
  key: KEY,
  valueBase64: value === null ? null : b64(value),
  session: 'S1',
  flags: 3304740253564472344n,
  lockIndex: 1n,
  createIndex: 10n,
  modifyIndex: 12n,
  ...over,
});

const schema = z.object({ host: z.string(), port: z.number() });
const json: Decoding<z.infer<typeof schema>> = { schema, decode: 'json' };

const heldSnapshot = (value: string | null): KeySnapshot => ({
  kind: 'held',
  key: KEY,
  entry: entry(value),
  session,
  meta: consul,
});

describe('toSettledState', () => {
  it('maps key-missing, no-session and session-gone to vacant with that reason', () => {
    expect(toSettledState({ kind: 'key-missing', key: KEY, meta: consul }, json)).toEqual({
      status: 'vacant',
      key: KEY,
      reason: 'key-missing',
      consul,
    });
    expect(toSettledState({ kind: 'no-session', key: KEY, entry: entry(null), meta: consul }, json)).toEqual({
      status: 'vacant',
      key: KEY,
      reason: 'no-session',
      consul,
    });
    expect(
      toSettledState({ kind: 'session-gone', key: KEY, entry: entry(null), meta: consul }, json),
    ).toEqual({
      status: 'vacant',
      key: KEY,
      reason: 'session-gone',
      consul,
    });
  });

  it('maps a held key with a valid descriptor to a leader, without the base64 value', () => {
    const state = toSettledState(heldSnapshot('{"host":"10.0.0.7","port":8080}'), json);
    expect(state).toEqual({
      status: 'leader',
      key: KEY,
      leader: {
        key: KEY,
        lockIndex: 1n,
        modifyIndex: 12n,
        createIndex: 10n,
        flags: 3304740253564472344n,
        node: { host: '10.0.0.7', port: 8080 },
        session,
      },
      consul,
    });
    expect(state.status === 'leader' && 'valueBase64' in state.leader).toBe(false);
  });

  it('maps a held key with a bad descriptor to invalid, with raw text, error and issues', () => {
    const state = toSettledState(heldSnapshot('{"host":"h","port":"80"}'), json);
    if (state.status !== 'invalid') throw new Error(`expected invalid, got ${state.status}`);
    expect(state.key).toBe(KEY);
    expect(state.entry).toEqual({
      key: KEY,
      lockIndex: 1n,
      modifyIndex: 12n,
      createIndex: 10n,
      flags: 3304740253564472344n,
    });
    expect(state.session).toBe(session);
    expect(state.raw).toBe('{"host":"h","port":"80"}');
    expect(state.error).toBeInstanceOf(InvalidDescriptorError);
    expect(state.error.code).toBe('INVALID_DESCRIPTOR');
    expect(state.issues).toBe((state.error as InvalidDescriptorError).issues);
    expect(state.issues[0]?.path).toEqual(['port']);
    expect(state.consul).toBe(consul);
  });

  it('uses the descriptor decode option', () => {
    const text: Decoding<string> = { schema: z.string().min(1), decode: 'text' };
    const state = toSettledState(heldSnapshot('10.0.0.7:8080'), text);
    expect(state.status === 'leader' && state.leader.node).toBe('10.0.0.7:8080');
  });
});

describe('stateMapper', () => {
  const unreachable = (lastKnown: KeySnapshot | null): KeyEvent => ({
    kind: 'unreachable',
    key: KEY,
    error: new ConsulUnreachableError('timeout', 'no answer from Consul within 10000 ms'),
    attempt: 2,
    retryInMs: 500,
    lastKnown,
  });

  it('maps settled events like toSettledState', () => {
    const map = stateMapper(json);
    const snapshot = heldSnapshot('{"host":"a","port":1}');
    expect(map(snapshot)).toEqual(toSettledState(snapshot, json));
    expect(map({ kind: 'key-missing', key: KEY, meta: consul })).toMatchObject({
      status: 'vacant',
      reason: 'key-missing',
    });
  });

  it('maps unreachable events with lastKnown as a state', () => {
    const map = stateMapper(json);
    const snapshot = heldSnapshot('{"host":"a","port":1}');
    const event = unreachable(snapshot);
    const state = map(event);
    expect(state).toEqual({
      status: 'unreachable',
      key: KEY,
      error: event.kind === 'unreachable' ? event.error : undefined,
      attempt: 2,
      retryInMs: 500,
      lastKnown: toSettledState(snapshot, json),
    });
    expect(map(unreachable(null))).toMatchObject({ status: 'unreachable', lastKnown: null });
  });

  it('decodes a snapshot once, reusing the state as lastKnown', () => {
    let decodes = 0;
    const counting: Decoding<unknown> = {
      schema: z.unknown(),
      decode: (bytes) => {
        decodes += 1;
        return Buffer.from(bytes).toString('utf8');
      },
    };
    const map = stateMapper(counting);
    const snapshot = heldSnapshot('x');
    const first = map(snapshot);
    const later = map(unreachable(snapshot));
    expect(decodes).toBe(1);
    expect(later.status === 'unreachable' && later.lastKnown).toBe(first);
    expect(map(snapshot)).toBe(first);
    expect(decodes).toBe(1);
  });

  it('keeps separate mappers separate (one schema per watch call)', () => {
    const strict = stateMapper<{ host: string; port: number }>(json);
    const loose = stateMapper<unknown>({ schema: z.unknown(), decode: 'json' });
    const snapshot = heldSnapshot('{"host":1}');
    expect(strict(snapshot).status).toBe('invalid');
    expect(loose(snapshot).status).toBe('leader');
  });
});

describe('sameLeader', () => {
  const leader = (over: Partial<Leader<unknown>> = {}): Leader<unknown> => ({
    key: KEY,
    lockIndex: 1n,
    modifyIndex: 12n,
    createIndex: 10n,
    flags: 0n,
    node: { host: 'a' },
    session,
    ...over,
  });

  it('equates null with null only', () => {
    expect(sameLeader(null, null)).toBe(true);
    expect(sameLeader(null, leader())).toBe(false);
    expect(sameLeader(leader(), null)).toBe(false);
  });

  it('equates the same session and write of the key, whatever object holds it', () => {
    expect(sameLeader(leader(), leader({ node: { host: 'a' } }))).toBe(true);
    expect(sameLeader(leader(), leader({ session: { ...session, name: 'renamed' } }))).toBe(true);
  });

  it('tells apart a new write, a new session, a new acquisition and another key', () => {
    expect(sameLeader(leader(), leader({ modifyIndex: 13n }))).toBe(false);
    expect(sameLeader(leader(), leader({ session: { ...session, id: 'S2' } }))).toBe(false);
    expect(sameLeader(leader(), leader({ lockIndex: 2n }))).toBe(false);
    expect(sameLeader(leader(), leader({ key: 'other' }))).toBe(false);
  });
});

describe('sameState', () => {
  const consul = { index: 5n, lastContactMs: 0, knownLeader: true };
  it('sees two vacant states with the same reason as the same, whatever the entry', () => {
    expect(
      sameState(
        { status: 'vacant', key: 'k', reason: 'no-session', consul },
        { status: 'vacant', key: 'k', reason: 'no-session', consul: { ...consul, index: 9n } },
      ),
    ).toBe(true);
    expect(
      sameState(
        { status: 'vacant', key: 'k', reason: 'no-session', consul },
        { status: 'vacant', key: 'k', reason: 'key-missing', consul },
      ),
    ).toBe(false);
  });
  it('sees a server that lost its Raft leader as a change', () => {
    expect(
      sameState(
        { status: 'vacant', key: 'k', reason: 'no-session', consul },
        { status: 'vacant', key: 'k', reason: 'no-session', consul: { ...consul, knownLeader: false } },
      ),
    ).toBe(false);
  });
});
