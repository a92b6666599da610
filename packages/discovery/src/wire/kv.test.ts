import { describe, it, expect } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import { ConsulHttpError, InvalidResponseError, PermissionDeniedError } from '../errors.js';
import { KEY_MISSING, readKvKeys, readKvList, readKvResponse } from './kv.js';
import { KvListReader } from './kv-list.js';
import type { ConsulResponse } from './transport.js';

const HEADERS: IncomingHttpHeaders = {
  'content-type': 'application/json',
  'x-consul-index': '14',
  'x-consul-knownleader': 'true',
  'x-consul-lastcontact': '0',
};

function res(status: number, body: string, headers: IncomingHttpHeaders = HEADERS): ConsulResponse {
  return { status, headers, body: Buffer.from(body, 'utf8') };
}

/** `consul lock service/api/leader ...` as Consul 1.8 answers a GET of the key. */
const LOCKED =
  '[{"LockIndex":1,"Key":"k","Flags":3304740253564472344,"Value":"eyJ9","Session":"abc","CreateIndex":14,"ModifyIndex":14}]';

function expectThrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('readKvResponse', () => {
  it('reads a held key with its consul lock flag exact', () => {
    const read = readKvResponse(res(200, LOCKED), 'k');
    expect(read).toEqual({
      kind: 'entry',
      entry: {
        key: 'k',
        valueBase64: 'eyJ9',
        session: 'abc',
        flags: 3304740253564472344n,
        lockIndex: 1n,
        createIndex: 14n,
        modifyIndex: 14n,
      },
    });
    if (read.kind !== 'entry') throw new Error('expected an entry');
    expect(read.entry.flags).toBe(0x2ddccbc058a50c18n);
  });

  it('reads a released key (no Session field) as session null', () => {
    const body =
      '[{"LockIndex":1,"Key":"k","Flags":3304740253564472344,"Value":"eyJ9","CreateIndex":14,"ModifyIndex":15}]';
    const read = readKvResponse(res(200, body), 'k');
    expect(read.kind === 'entry' && read.entry.session).toBeNull();
  });

  it('reads Session "" as no session', () => {
    const body =
      '[{"LockIndex":0,"Key":"k","Flags":0,"Value":"eyJ9","Session":"","CreateIndex":3,"ModifyIndex":3}]';
    const read = readKvResponse(res(200, body), 'k');
    expect(read.kind === 'entry' && read.entry.session).toBeNull();
  });

  it('reads Value null (a key without value) as valueBase64 null', () => {
    const body =
      '[{"LockIndex":1,"Key":"k","Flags":0,"Value":null,"Session":"abc","CreateIndex":3,"ModifyIndex":4}]';
    const read = readKvResponse(res(200, body), 'k');
    expect(read.kind === 'entry' && read.entry.valueBase64).toBeNull();
  });

  it('passes a Value that is not base64 through, for the descriptor decoding to refuse', () => {
    const body =
      '[{"LockIndex":1,"Key":"k","Flags":0,"Value":"!!!","Session":"abc","CreateIndex":1,"ModifyIndex":1}]';
    const read = readKvResponse(res(200, body), 'k');
    expect(read.kind === 'entry' && read.entry.valueBase64).toBe('!!!');
  });

  it('keeps indexes beyond 2^53 exact', () => {
    const body =
      '[{"LockIndex":18446744073709551615,"Key":"k","Flags":0,"Value":null,"Session":"abc","CreateIndex":9007199254740993,"ModifyIndex":18446744073709551614}]';
    const read = readKvResponse(res(200, body), 'k');
    if (read.kind !== 'entry') throw new Error('expected an entry');
    expect(read.entry.lockIndex).toBe(18446744073709551615n);
    expect(read.entry.createIndex).toBe(9007199254740993n);
    expect(read.entry.modifyIndex).toBe(18446744073709551614n);
  });

  it('picks the entry of the key asked for', () => {
    const body =
      '[{"LockIndex":0,"Key":"k/a","Flags":0,"Value":null,"CreateIndex":3,"ModifyIndex":3},' +
      '{"LockIndex":2,"Key":"k","Flags":5,"Value":"eyJ9","Session":"s2","CreateIndex":4,"ModifyIndex":9}]';
    const read = readKvResponse(res(200, body), 'k');
    expect(read.kind === 'entry' && read.entry.session).toBe('s2');
  });

  it('refuses an answer about other keys only', () => {
    expect(() => readKvResponse(res(200, LOCKED), 'other')).toThrow(InvalidResponseError);
  });

  it('reads 404 as missing, whatever the body', () => {
    expect(readKvResponse(res(404, ''), 'k')).toBe(KEY_MISSING);
    expect(readKvResponse(res(404, 'not json'), 'k')).toEqual({ kind: 'missing' });
  });

  it('throws PermissionDeniedError on 403', () => {
    const error = expectThrown(() => readKvResponse(res(403, 'Permission denied'), 'k'));
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).code).toBe('PERMISSION_DENIED');
    expect((error as PermissionDeniedError).status).toBe(403);
    expect((error as Error).message).toContain('Permission denied');
  });

  it('throws ConsulHttpError with the status on 500', () => {
    const error = expectThrown(() => readKvResponse(res(500, 'rpc error: No cluster leader'), 'k'));
    expect(error).toBeInstanceOf(ConsulHttpError);
    expect((error as ConsulHttpError).code).toBe('CONSUL_HTTP_ERROR');
    expect((error as ConsulHttpError).status).toBe(500);
    expect((error as ConsulHttpError).retryAfterMs).toBeUndefined();
    expect((error as Error).message).toContain('No cluster leader');
  });

  it('keeps only a short line of a long error body', () => {
    const error = expectThrown(() => readKvResponse(res(502, 'x'.repeat(10_000)), 'k'));
    expect((error as Error).message.length).toBeLessThan(300);
  });

  it('reads Retry-After of a 429 into retryAfterMs', () => {
    const error = expectThrown(() =>
      readKvResponse(res(429, 'rate limit exceeded', { ...HEADERS, 'retry-after': '5' }), 'k'),
    );
    expect(error).toBeInstanceOf(ConsulHttpError);
    expect((error as ConsulHttpError).status).toBe(429);
    expect((error as ConsulHttpError).retryAfterMs).toBe(5_000);
  });

  it('throws InvalidResponseError when a 200 body is not JSON', () => {
    const error = expectThrown(() => readKvResponse(res(200, '<html>proxy error</html>'), 'k'));
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect((error as InvalidResponseError).code).toBe('INVALID_RESPONSE');
    expect((error as InvalidResponseError).status).toBe(200);
  });

  it.each([
    ['an object', '{"Key":"k"}'],
    ['entries without indexes', '[{"Key":"k","Flags":0}]'],
    [
      'a string Flags that is not a number',
      '[{"LockIndex":0,"Key":"k","Flags":"x","CreateIndex":1,"ModifyIndex":1}]',
    ],
    ['a negative index', '[{"LockIndex":0,"Key":"k","Flags":0,"CreateIndex":-1,"ModifyIndex":1}]'],
    ['null', 'null'],
    ['an empty list', '[]'],
  ])('throws InvalidResponseError for %s', (_what, body) => {
    expect(() => readKvResponse(res(200, body), 'k')).toThrow(InvalidResponseError);
  });
});

describe('readKvList', () => {
  const entry = (key: string, modifyIndex: number, session?: string) => ({
    LockIndex: 1,
    Key: key,
    Flags: 0,
    Value: 'eyJ9',
    ...(session ? { Session: session } : {}),
    CreateIndex: 3,
    ModifyIndex: modifyIndex,
  });

  it("reads a recursive answer's entries in order; 404 is an empty map", () => {
    const list = readKvList(res(200, JSON.stringify([entry('p/a', 5, 's1'), entry('p/b', 6)])), 'p/');
    expect(list.map((e) => e.key)).toEqual(['p/a', 'p/b']);
    expect(list[0]?.session).toBe('s1');
    expect(list[1]?.session).toBeNull();
    expect(new KvListReader('p/').read(res(404, '')).size).toBe(0);
  });

  it('keeps the previous object of a key not written since, and a new one for a key that was', () => {
    const first = readKvList(res(200, JSON.stringify([entry('p/a', 5, 's1'), entry('p/b', 6)])), 'p/');
    const second = readKvList(
      res(200, JSON.stringify([entry('p/a', 5, 's1'), entry('p/b', 9, 's2')])),
      'p/',
      new Map(first.map((e) => [e.key, e])),
    );
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(second[1]?.modifyIndex).toBe(9n);
  });

  it('refuses keys outside the prefix and entries of the wrong shape', () => {
    expect(() => readKvList(res(200, JSON.stringify([entry('q/a', 5)])), 'p/')).toThrow(InvalidResponseError);
    expect(() => readKvList(res(200, JSON.stringify([{ Key: 'p/a' }])), 'p/')).toThrow(InvalidResponseError);
  });
});

describe('readKvKeys', () => {
  it('reads a ?keys answer in order; 404 is no keys', () => {
    expect(readKvKeys(res(200, '["p/a","p/b/c"]'))).toEqual(['p/a', 'p/b/c']);
    expect(readKvKeys(res(404, ''))).toEqual([]);
  });

  it('refuses a body that is not a list of keys, and error statuses, with typed errors', () => {
    expect(() => readKvKeys(res(200, '[1]'))).toThrow(InvalidResponseError);
    expect(() => readKvKeys(res(200, '{"Key":"p/a"}'))).toThrow(InvalidResponseError);
    expect(() => readKvKeys(res(200, '["p/a"'))).toThrow(InvalidResponseError);
    expect(() => readKvKeys(res(403, 'Permission denied'))).toThrow(PermissionDeniedError);
  });
});
