import { describe, it, expect } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import { ConsulHttpError, InvalidResponseError, PermissionDeniedError } from '../errors.js';
import { readSessionResponse } from './session.js';
import type { ConsulResponse } from './transport.js';

const HEADERS: IncomingHttpHeaders = { 'content-type': 'application/json', 'x-consul-index': '20' };
const ID = 'adf4238a-882b-9ddc-4a9d-5b6758e4159e';

function res(status: number, body: string, headers: IncomingHttpHeaders = HEADERS): ConsulResponse {
  return { status, headers, body: Buffer.from(body, 'utf8') };
}

/** `GET /v1/session/info/<id>` of a `consul lock` session, as Consul 1.8 answers it. */
const LOCK_SESSION =
  `[{"ID":"${ID}","Name":"Consul-Lock session","Node":"node-1","Checks":null,` +
  `"NodeChecks":["serfHealth"],"ServiceChecks":null,"LockDelay":15000000000,"Behavior":"release",` +
  `"TTL":"15s","CreateIndex":13,"ModifyIndex":13}]`;

describe('readSessionResponse', () => {
  it('reads a Consul 1.8 session', () => {
    expect(readSessionResponse(res(200, LOCK_SESSION), ID)).toEqual({
      id: ID,
      name: 'Consul-Lock session',
      node: 'node-1',
      checks: ['serfHealth'],
      behavior: 'release',
      ttl: '15s',
      ttlMs: 15_000,
      lockDelayMs: 15_000,
      createIndex: 13n,
      modifyIndex: 13n,
    });
  });

  it('reads [] (session gone) as null', () => {
    expect(readSessionResponse(res(200, '[]'), ID)).toBeNull();
  });

  it('reads a session without TTL as ttlMs null', () => {
    const body = `[{"ID":"${ID}","Name":"","Node":"n","Checks":["serfHealth"],"LockDelay":0,"Behavior":"delete","TTL":"","CreateIndex":5,"ModifyIndex":6}]`;
    const session = readSessionResponse(res(200, body), ID);
    expect(session?.ttl).toBe('');
    expect(session?.ttlMs).toBeNull();
    expect(session?.lockDelayMs).toBe(0);
    expect(session?.behavior).toBe('delete');
    expect(session?.modifyIndex).toBe(6n);
  });

  it('reads composite TTLs and sub-second lock delays', () => {
    const body = `[{"ID":"${ID}","Node":"n","LockDelay":1500000,"Behavior":"release","TTL":"1m30s","CreateIndex":5}]`;
    const session = readSessionResponse(res(200, body), ID);
    expect(session?.ttlMs).toBe(90_000);
    expect(session?.lockDelayMs).toBe(1.5);
    expect(session?.name).toBe('');
    // Older answers without ModifyIndex: the create index stands in.
    expect(session?.modifyIndex).toBe(5n);
    expect(session?.checks).toEqual([]);
  });

  it('reads the legacy Checks list (Consul <= 1.6)', () => {
    const body = `[{"ID":"${ID}","Name":"x","Node":"n","Checks":["serfHealth","service:web"],"LockDelay":15000000000,"Behavior":"release","TTL":"","CreateIndex":5,"ModifyIndex":5}]`;
    expect(readSessionResponse(res(200, body), ID)?.checks).toEqual(['serfHealth', 'service:web']);
  });

  it('joins NodeChecks and ServiceChecks', () => {
    const body = `[{"ID":"${ID}","Name":"x","Node":"n","Checks":null,"NodeChecks":["serfHealth"],"ServiceChecks":[{"ID":"web","Namespace":""}],"LockDelay":0,"Behavior":"release","TTL":"","CreateIndex":5,"ModifyIndex":5}]`;
    expect(readSessionResponse(res(200, body), ID)?.checks).toEqual(['serfHealth', 'web']);
  });

  it('reports every check that can invalidate the session when Checks is also set', () => {
    const body = `[{"ID":"${ID}","Name":"x","Node":"n","Checks":["service:db"],"NodeChecks":["serfHealth"],"ServiceChecks":[{"ID":"web","Namespace":""}],"LockDelay":0,"Behavior":"release","TTL":"","CreateIndex":5,"ModifyIndex":5}]`;
    const checks = readSessionResponse(res(200, body), ID)?.checks ?? [];
    expect([...checks].sort()).toEqual(['serfHealth', 'service:db', 'web']);
  });

  it('keeps the namespace when Consul sends one', () => {
    const body = `[{"ID":"${ID}","Node":"n","LockDelay":0,"Behavior":"release","TTL":"","Namespace":"team-a","CreateIndex":5}]`;
    expect(readSessionResponse(res(200, body), ID)?.namespace).toBe('team-a');
    expect(readSessionResponse(res(200, LOCK_SESSION), ID)).not.toHaveProperty('namespace');
  });

  it('gives ttlMs null for a TTL it cannot read', () => {
    const body = `[{"ID":"${ID}","Node":"n","LockDelay":0,"Behavior":"release","TTL":"soon","CreateIndex":5}]`;
    const session = readSessionResponse(res(200, body), ID);
    expect(session?.ttl).toBe('soon');
    expect(session?.ttlMs).toBeNull();
  });

  it('refuses an answer about another session', () => {
    expect(() => readSessionResponse(res(200, LOCK_SESSION), 'other-id')).toThrow(InvalidResponseError);
  });

  it('throws PermissionDeniedError on 403', () => {
    expect(() => readSessionResponse(res(403, 'ACL not found'), ID)).toThrow(PermissionDeniedError);
  });

  it('throws ConsulHttpError with status and Retry-After on 503', () => {
    try {
      readSessionResponse(res(503, 'overloaded', { ...HEADERS, 'retry-after': '2' }), ID);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConsulHttpError);
      expect((error as ConsulHttpError).status).toBe(503);
      expect((error as ConsulHttpError).retryAfterMs).toBe(2_000);
    }
  });

  it('does not treat 404 as "session gone"', () => {
    expect(() => readSessionResponse(res(404, ''), ID)).toThrow(ConsulHttpError);
  });

  it.each([
    ['not JSON', 'Bad Gateway'],
    ['an object', `{"ID":"${ID}"}`],
    ['an entry without ID', '[{"Node":"n","LockDelay":0,"Behavior":"release","CreateIndex":1}]'],
    ['an unknown behavior', `[{"ID":"${ID}","Node":"n","LockDelay":0,"Behavior":"kill","CreateIndex":1}]`],
    [
      'a negative LockDelay',
      `[{"ID":"${ID}","Node":"n","LockDelay":-1,"Behavior":"release","CreateIndex":1}]`,
    ],
  ])('throws InvalidResponseError for %s', (_what, body) => {
    try {
      readSessionResponse(res(200, body), ID);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidResponseError);
      expect((error as InvalidResponseError).code).toBe('INVALID_RESPONSE');
    }
  });
});
