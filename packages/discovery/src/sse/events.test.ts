import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ConsulReadMeta, leaderStateSchema } from '@consul-leader/types';
import { sessionInfo } from '../test-fixtures.js';
import type { LeaderState, PrefixState } from '../discovery.js';
import { ConsulHttpError, ConsulUnreachableError, type LeaderDiscoveryError } from '../errors.js';
import {
  eventJson,
  formatSseComment,
  formatSseEvent,
  formatSseRetry,
  leaderEventJson,
  leaderEvents,
} from './events.js';

const consul: ConsulReadMeta = { index: 42n, lastContactMs: 0, knownLeader: true };
const session = (id: string) =>
  sessionInfo(id, { name: 'contender', checks: ['serfHealth'], createIndex: 9n, modifyIndex: 9n });
const leader = (key: string, id: string, node: unknown = { host: 'h', port: 1 }): LeaderState<unknown> => ({
  status: 'leader',
  key,
  leader: {
    key,
    node,
    session: session(id),
    lockIndex: 1n,
    modifyIndex: 10n,
    createIndex: 8n,
    flags: 3304740253564472344n,
  },
  consul,
});
const vacant = (key: string): LeaderState<unknown> => ({
  status: 'vacant',
  key,
  reason: 'no-session',
  consul,
});

const prefixState = (
  states: LeaderState<unknown>[],
  unreachable: PrefixState<unknown>['unreachable'] = null,
): PrefixState<unknown> => ({
  prefix: 'svc/',
  states: new Map(states.map((s) => [s.key, s])),
  unreachable,
  consul,
});

const State = leaderStateSchema(z.unknown());

describe('leaderEvents', () => {
  it('starts with a snapshot of every key, sorted, with the outage', () => {
    const b = leader('svc/b', 'S2');
    const a = vacant('svc/a');
    const events = leaderEvents(undefined, prefixState([b, a]));
    expect(events).toEqual([
      { event: 'snapshot', data: { prefix: 'svc/', states: [a, b], unreachable: null } },
    ]);
  });

  it('sends state only for keys whose state object changed, removed for keys gone', () => {
    const a = leader('svc/a', 'S1');
    const b = leader('svc/b', 'S2');
    const c = leader('svc/c', 'S3');
    const first = prefixState([a, b, c]);
    const a2 = vacant('svc/a');
    const d = leader('svc/d', 'S4');
    // b keeps its object; an equal but new object for c counts as a change (identity).
    const c2 = { ...c };
    const events = leaderEvents(first, prefixState([a2, b, c2, d].filter((s) => s.key !== 'svc/b')));
    expect(events).toEqual([
      { event: 'removed', data: { key: 'svc/b' } },
      { event: 'state', data: a2 },
      { event: 'state', data: c2 },
      { event: 'state', data: d },
    ]);
    expect(leaderEvents(first, prefixState([a, b, c]))).toEqual([]);
  });

  it('sends consul when the outage starts, fails again (each retry) and ends', () => {
    const a = leader('svc/a', 'S1');
    const up = prefixState([a]);
    const refused = new ConsulUnreachableError('refused', 'connect ECONNREFUSED');
    const down1 = prefixState([], { error: refused, attempt: 1, retryInMs: 250 });
    const down2 = prefixState([], { error: refused, attempt: 2, retryInMs: 500 });
    const down3 = prefixState([], {
      error: new ConsulHttpError(500, 'No cluster leader'),
      attempt: 3,
      retryInMs: 1000,
    });
    expect(leaderEvents(up, down1)).toEqual([
      {
        event: 'consul',
        data: {
          unreachable: {
            code: 'CONSUL_UNREACHABLE',
            message: 'connect ECONNREFUSED',
            attempt: 1,
            retryInMs: 250,
          },
        },
      },
      { event: 'removed', data: { key: 'svc/a' } },
    ]);
    expect(leaderEvents(down1, down2)).toEqual([
      {
        event: 'consul',
        data: {
          unreachable: {
            code: 'CONSUL_UNREACHABLE',
            message: 'connect ECONNREFUSED',
            attempt: 2,
            retryInMs: 500,
          },
        },
      },
    ]);
    expect(leaderEvents(down2, down3)).toEqual([
      {
        event: 'consul',
        data: {
          unreachable: {
            code: 'CONSUL_HTTP_ERROR',
            message: 'No cluster leader',
            status: 500,
            attempt: 3,
            retryInMs: 1000,
          },
        },
      },
    ]);
    expect(leaderEvents(down3, up)[0]).toEqual({ event: 'consul', data: { unreachable: null } });
    expect(leaderEvents(undefined, down1)).toEqual([
      {
        event: 'snapshot',
        data: {
          prefix: 'svc/',
          states: [],
          unreachable: {
            code: 'CONSUL_UNREACHABLE',
            message: 'connect ECONNREFUSED',
            attempt: 1,
            retryInMs: 250,
          },
        },
      },
    ]);
  });
});

describe('leaderEvents during an outage', () => {
  it('sends a key again only when more than its retry count changed: one consul event per retry, not one per key', () => {
    const a = leader('svc/a', 'S1') as Exclude<LeaderState<unknown>, { status: 'unreachable' }>;
    const b = leader('svc/b', 'S2') as Exclude<LeaderState<unknown>, { status: 'unreachable' }>;
    const refused = new ConsulUnreachableError('refused', 'connect ECONNREFUSED');
    const down = (attempt: number, error: LeaderDiscoveryError = refused): PrefixState<unknown> => {
      const outage = { error, attempt, retryInMs: 250 * attempt };
      const states = [a, b].map((lastKnown): LeaderState<unknown> => ({
        status: 'unreachable',
        key: lastKnown.key,
        ...outage,
        lastKnown,
      }));
      return { prefix: 'svc/', states: new Map(states.map((s) => [s.key, s])), unreachable: outage, consul };
    };
    const up = prefixState([a, b]);
    const first = leaderEvents(up, down(1));
    expect(first.map((e) => e.event)).toEqual(['consul', 'state', 'state']);
    const retried = leaderEvents(down(1), down(2));
    expect(retried.map((e) => e.event)).toEqual(['consul']);
    expect(retried[0]?.data).toMatchObject({ unreachable: { attempt: 2, retryInMs: 500 } });
    // Another error is news for each key too.
    const other = new ConsulHttpError(500, 'No cluster leader');
    expect(leaderEvents(down(2), down(3, other)).map((e) => e.event)).toEqual(['consul', 'state', 'state']);
    expect(leaderEvents(down(3, other), up).map((e) => e.event)).toEqual(['consul', 'state', 'state']);
  });
});

describe('eventJson', () => {
  it('writes bigints as decimal strings and errors as {code,message,status?}; the schema reads them back', () => {
    const a = leader('svc/a', 'S1', { host: 'db-1', port: 5432 });
    const down: LeaderState<unknown> = {
      status: 'unreachable',
      key: 'svc/a',
      error: new ConsulHttpError(503, 'busy', 1000),
      attempt: 2,
      retryInMs: 1000,
      lastKnown: a as Exclude<LeaderState<unknown>, { status: 'unreachable' }>,
    };
    const json = JSON.parse(eventJson(down)) as Record<string, unknown>;
    expect(json.error).toEqual({ code: 'CONSUL_HTTP_ERROR', message: 'busy', status: 503 });
    expect((json.lastKnown as { leader: { flags: unknown } }).leader.flags).toBe('3304740253564472344');
    const parsed = State.parse(json);
    expect(parsed).toEqual({ ...down, error: { code: 'CONSUL_HTTP_ERROR', message: 'busy', status: 503 } });
    expect(State.parse(JSON.parse(eventJson(a)))).toEqual(a);
  });
});

describe('leaderEventJson', () => {
  // 3,000 levels: JSON.parse reads it, JSON.stringify with a replacer overflows the stack.
  const deep = JSON.parse('['.repeat(3000) + ']'.repeat(3000)) as unknown;

  it('sends a key whose descriptor is too deep as invalid, in a snapshot and in a state event', () => {
    const bad = leader('svc/bad', 'S2', deep);
    const good = leader('svc/good', 'S1');
    const [snapshot] = leaderEvents(undefined, prefixState([bad, good]));
    if (!snapshot) throw new Error('no snapshot');
    const data = JSON.parse(leaderEventJson(snapshot)) as { states: unknown[] };
    const states = data.states.map((state) => State.parse(state));
    expect(states.map((s) => [s.key, s.status])).toEqual([
      ['svc/bad', 'invalid'],
      ['svc/good', 'leader'],
    ]);
    expect(states[0]).toMatchObject({
      issues: [{ code: 'unwritable' }],
      error: { code: 'INVALID_DESCRIPTOR' },
    });
    expect(states[1]).toEqual(good);

    // Each key is judged on its own: a descriptor JSON.stringify can write stays a leader
    // beside one it cannot; a payload with nothing to replace is written as before.
    const nested = JSON.parse('['.repeat(1500) + ']'.repeat(1500)) as unknown;
    const [mixed] = leaderEvents(undefined, prefixState([bad, leader('svc/nested', 'S3', nested)]));
    if (!mixed) throw new Error('no snapshot');
    const statuses = (JSON.parse(leaderEventJson(mixed)) as { states: { status: string }[] }).states;
    expect(statuses.map((s) => s.status)).toEqual(['invalid', 'leader']);
    const [plain] = leaderEvents(undefined, prefixState([good], null));
    if (!plain) throw new Error('no snapshot');
    expect(leaderEventJson(plain)).toBe(eventJson(plain.data));

    const [state] = leaderEvents(prefixState([good]), prefixState([good, bad]));
    if (!state) throw new Error('no state event');
    expect(State.parse(JSON.parse(leaderEventJson(state)))).toMatchObject({
      key: 'svc/bad',
      status: 'invalid',
    });
  });
});

describe('SSE wire format', () => {
  it('formats events, comments and retry', () => {
    expect(formatSseEvent(7, 'state', '{"a":1}')).toBe('id: 7\nevent: state\ndata: {"a":1}\n\n');
    expect(formatSseEvent(8, 'x', 'one\ntwo\r\nthree')).toBe(
      'id: 8\nevent: x\ndata: one\ndata: two\ndata: three\n\n',
    );
    expect(() => formatSseEvent(9, 'a\nb', '')).toThrow(/line break/);
    expect(formatSseComment('heartbeat')).toBe(': heartbeat\n\n');
    expect(formatSseRetry(2000)).toBe('retry: 2000\n\n');
  });
});
