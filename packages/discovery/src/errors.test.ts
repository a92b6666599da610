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
