import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it, expect } from 'vitest';
import {
  ConsulHttpError,
  ConsulUnreachableError,
  DiscoveryClosedError,
  InvalidDescriptorError,
  InvalidOptionError,
  InvalidResponseError,
  LeaderDiscoveryError,
  PermissionDeniedError,
  isLeaderDiscoveryError,
} from './errors.js';

describe('error classes', () => {
  const cause = new Error('ECONNREFUSED 127.0.0.1:8500');
  const cases: [LeaderDiscoveryError, string, string, number | undefined][] = [
    [
      new ConsulUnreachableError('refused', 'cannot reach Consul (refused)', { cause }),
      'ConsulUnreachableError',
      'CONSUL_UNREACHABLE',
      undefined,
    ],
    [new ConsulHttpError(500, 'Consul answered HTTP 500'), 'ConsulHttpError', 'CONSUL_HTTP_ERROR', 500],
    [
      new PermissionDeniedError('Consul refused the read (403)'),
      'PermissionDeniedError',
      'PERMISSION_DENIED',
      403,
    ],
    [new InvalidResponseError('bad body'), 'InvalidResponseError', 'INVALID_RESPONSE', undefined],
    [new InvalidDescriptorError('bad value', []), 'InvalidDescriptorError', 'INVALID_DESCRIPTOR', undefined],
    [new InvalidOptionError('invalid option wait'), 'InvalidOptionError', 'INVALID_OPTION', undefined],
    [new DiscoveryClosedError(), 'DiscoveryClosedError', 'DISCOVERY_CLOSED', undefined],
  ];

  it.each(cases)('%s has name %s, code %s and status %s', (error, name, code, status) => {
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(LeaderDiscoveryError);
    expect(isLeaderDiscoveryError(error)).toBe(true);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(String(error)).toBe(`${name}: ${error.message}`);
  });

  it.each(cases)('%s serialises to { code, message, status? }', (error, _name, code, status) => {
    const expected =
      status === undefined ? { code, message: error.message } : { code, message: error.message, status };
    expect(error.toJSON()).toEqual(expected);
    expect(JSON.parse(JSON.stringify(error))).toEqual(expected);
    expect(Object.keys(error.toJSON())).not.toContain('cause');
  });

  it('keeps the cause without putting it in the JSON', () => {
    const error = new ConsulUnreachableError('refused', 'cannot reach Consul (refused)', { cause });
    expect(error.cause).toBe(cause);
    expect(error.reason).toBe('refused');
    expect(JSON.stringify(error)).not.toContain('ECONNREFUSED');
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new InvalidResponseError('x')).toBe(false);
  });

  it('carries retryAfterMs on ConsulHttpError only when given', () => {
    expect(new ConsulHttpError(429, 'x', 5_000).retryAfterMs).toBe(5_000);
    expect(new ConsulHttpError(500, 'x').retryAfterMs).toBeUndefined();
  });

  it('carries the status of an invalid response when given', () => {
    expect(new InvalidResponseError('x', { status: 200 }).toJSON()).toEqual({
      code: 'INVALID_RESPONSE',
      message: 'x',
      status: 200,
    });
  });

  it('keeps nothing alive of the code that made it (V8 holds captured frames until the stack is read)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // An invalid value found while mapping a prefix's answer, its cause (JSON.parse's error) made
    // there too: the answer must not live on in the state that keeps the error.
    const made = (): { answer: WeakRef<object[]>; error: InvalidDescriptorError } => {
      const answer = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}` }));
      const cause = [answer].map(() => new SyntaxError('not JSON'))[0];
      const [error] = answer
        .slice(0, 1)
        .map(() => [answer].map(() => new InvalidDescriptorError('bad', [], { cause }))[0]);
      return { answer: new WeakRef(answer), error: error as InvalidDescriptorError };
    };
    const { answer, error } = made();
    // A WeakRef holds its target until the end of the current job.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(answer.deref()).toBeUndefined();
    expect(error.stack).toContain('InvalidDescriptorError: bad');
  });

  it('keeps nothing alive through a chain of causes either (a cause that wraps another)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const made = (): { answer: WeakRef<object[]>; error: InvalidDescriptorError } => {
      const answer = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}` }));
      // decode.ts wraps JSON.parse's error to add a hint: the inner one was made while mapping.
      const inner = [answer].map(() => new SyntaxError('not JSON'))[0];
      const hint = new SyntaxError('not JSON (plain text?)', { cause: inner });
      return { answer: new WeakRef(answer), error: new InvalidDescriptorError('bad', [], { cause: hint }) };
    };
    const { answer, error } = made();
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(answer.deref()).toBeUndefined();
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it("is made even when a user's Error.prepareStackTrace throws", () => {
    const prepare = Error.prepareStackTrace;
    Error.prepareStackTrace = () => {
      throw new Error('broken hook');
    };
    try {
      expect(new InvalidDescriptorError('bad', []).code).toBe('INVALID_DESCRIPTOR');
    } finally {
      Error.prepareStackTrace = prepare;
    }
  });

  it('carries descriptor issues', () => {
    const issues = [{ code: 'invalid_type', message: 'expected string', path: ['host'] }];
    expect(new InvalidDescriptorError('bad', issues).issues).toBe(issues);
  });

  it('tells SDK errors from others', () => {
    expect(isLeaderDiscoveryError(new Error('x'))).toBe(false);
    expect(isLeaderDiscoveryError({ code: 'CONSUL_HTTP_ERROR', message: 'x' })).toBe(false);
    expect(isLeaderDiscoveryError(null)).toBe(false);
  });
});
