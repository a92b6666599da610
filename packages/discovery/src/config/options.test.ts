import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { InvalidOptionError } from '../errors.js';
import { DEFAULT_RETRY_POLICY } from './defaults.js';
import {
  type LeaderDiscoveryOptions,
  parseCallOptions,
  parseDiscoveryOptions,
  resolveDiscoveryDefaults,
} from './options.js';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).code).toBe('INVALID_OPTION');
    return (error as Error).message;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('parseDiscoveryOptions', () => {
  it('accepts every documented option', () => {
    const options = {
      consul: { host: 'consul', port: 8501, secure: true, defaults: { token: 't', dc: 'dc1' }, ca: ['x'] },
      wait: '5m',
      consistency: 'stale',
      dc: 'dc2',
      token: 'abc',
      requestTimeout: 2_000,
      retry: { initialDelayMs: 100, maxDelayMs: 2_000, permissionDeniedDelayMs: 0 },
      idleWakeups: { burst: 3, perSecond: 1 },
      env: { CONSUL_HTTP_ADDR: 'x:1', UNSET: undefined },
      watchSessions: true,
      http2: true,
      splitPrefixes: { minKeys: 100, maxQueries: 32 },
    } as const;
    expect(parseDiscoveryOptions(options)).toEqual(options);
  });

  it('accepts a ready node-consul client', () => {
    const client = { _get: () => undefined, kv: {} };
    expect(() => parseDiscoveryOptions({ consul: client })).not.toThrow();
  });

  it('rejects unknown option names, naming them', () => {
    expect(message(() => parseDiscoveryOptions({ timeout: 5 }))).toContain('"timeout"');
    expect(message(() => parseDiscoveryOptions({ retry: { attempts: 3 } }))).toMatch(/retry.*"attempts"/);
    expect(message(() => parseDiscoveryOptions({ idleWakeups: { rate: 3 } }))).toContain('"rate"');
  });

  it('rejects a wait above 10 minutes or not above 0, naming wait', () => {
    expect(message(() => parseDiscoveryOptions({ wait: '11m' }))).toContain('wait');
    expect(message(() => parseDiscoveryOptions({ wait: 600_001 }))).toContain('wait');
    expect(message(() => parseDiscoveryOptions({ wait: 0 }))).toContain('wait');
    expect(message(() => parseDiscoveryOptions({ wait: '-1s' }))).toContain('wait');
    expect(() => parseDiscoveryOptions({ wait: '10m' })).not.toThrow();
    expect(() => parseDiscoveryOptions({ wait: 600_000 })).not.toThrow();
  });

  it('rejects a wait that is not a duration, naming wait', () => {
    const text = message(() => parseDiscoveryOptions({ wait: 'forever' }));
    expect(text).toContain('wait');
    expect(text).toContain('forever');
    expect(message(() => parseDiscoveryOptions({ wait: true }))).toContain('wait');
  });

  it('rejects a bad requestTimeout, naming it', () => {
    expect(message(() => parseDiscoveryOptions({ requestTimeout: 'soon' }))).toContain('requestTimeout');
    expect(() => parseDiscoveryOptions({ requestTimeout: '2h' })).not.toThrow();
  });

  it('rejects a bad consistency, naming it', () => {
    expect(message(() => parseDiscoveryOptions({ consistency: 'strong' }))).toContain('consistency');
  });

  it('rejects bad nested values, naming the full path', () => {
    expect(message(() => parseDiscoveryOptions({ consul: { port: 70_000 } }))).toContain('consul');
    expect(message(() => parseDiscoveryOptions({ retry: { maxDelayMs: -1 } }))).toContain('retry.maxDelayMs');
    expect(message(() => parseDiscoveryOptions({ idleWakeups: { burst: 0 } }))).toContain(
      'idleWakeups.burst',
    );
    expect(message(() => parseDiscoveryOptions({ dc: '' }))).toContain('dc');
    expect(message(() => parseDiscoveryOptions({ watchSessions: 'yes' }))).toContain('watchSessions');
    expect(message(() => parseDiscoveryOptions({ http2: 1 }))).toContain('http2');
    // Past 90 queries a prefix would need a second HTTP/2 connection (Consul allows 100 streams on one).
    expect(message(() => parseDiscoveryOptions({ splitPrefixes: { maxQueries: 91 } }))).toContain(
      'splitPrefixes.maxQueries',
    );
    expect(message(() => parseDiscoveryOptions({ splitPrefixes: { minKeys: 1 } }))).toContain(
      'splitPrefixes.minKeys',
    );
    expect(() => parseDiscoveryOptions({ splitPrefixes: false })).not.toThrow();
    expect(() => parseDiscoveryOptions({ splitPrefixes: { http1: true } })).not.toThrow();
    expect(
      message(() =>
        parseDiscoveryOptions({ splitPrefixes: { http1: 'yes' } } as unknown as LeaderDiscoveryOptions),
      ),
    ).toContain('splitPrefixes.http1');
  });

  it('rejects options that are not an object', () => {
    expect(message(() => parseDiscoveryOptions('consul:8500'))).toContain('options');
  });

  it('resolves the documented defaults', () => {
    expect(resolveDiscoveryDefaults(parseDiscoveryOptions({}))).toEqual({
      waitMs: 60_000,
      requestTimeoutMs: 10_000,
      consistency: 'default',
      retry: DEFAULT_RETRY_POLICY,
      idleWakeups: { burst: 5, perSecond: 2 },
    });
  });

  it('resolves given values over the defaults', () => {
    const resolved = resolveDiscoveryDefaults(
      parseDiscoveryOptions({
        wait: '1m30s',
        requestTimeout: 500,
        retry: { maxDelayMs: 1_000 },
        dc: 'dc2',
        token: 't',
      }),
    );
    expect(resolved.waitMs).toBe(90_000);
    expect(resolved.requestTimeoutMs).toBe(500);
    expect(resolved.retry).toEqual({ ...DEFAULT_RETRY_POLICY, maxDelayMs: 1_000 });
    expect(resolved.dc).toBe('dc2');
    expect(resolved.token).toBe('t');
  });

  it('resolves the defaults when no options are given', () => {
    expect(resolveDiscoveryDefaults(parseDiscoveryOptions(undefined)).waitMs).toBe(60_000);
  });
});

describe('parseCallOptions', () => {
  it('accepts the documented options and returns them', () => {
    const schema = z.object({ host: z.string() });
    const decode = (bytes: Uint8Array) => bytes.length;
    expect(
      parseCallOptions('key', 'k', { schema, consistency: 'consistent', wait: '30s', dc: 'dc1', token: 't' }),
    ).toEqual({
      schema,
      consistency: 'consistent',
      wait: '30s',
      dc: 'dc1',
      token: 't',
    });
    expect(parseCallOptions('key', 'k', { decode }).decode).toBe(decode);
    expect(parseCallOptions('key', 'k', { decode: 'text' }).decode).toBe('text');
  });

  it('accepts absent options', () => {
    expect(parseCallOptions('key', 'service/api/leader', undefined)).toEqual({});
    expect(parseCallOptions('key', 'service/api/leader', null)).toEqual({});
  });

  it('rejects an empty, non-string or absolute key, naming key', () => {
    expect(message(() => parseCallOptions('key', '', {}))).toContain('key');
    expect(message(() => parseCallOptions('key', undefined, {}))).toContain('key');
    expect(message(() => parseCallOptions('key', 42, {}))).toContain('key');
    expect(message(() => parseCallOptions('key', '/service/leader', {}))).toContain('key');
  });

  it('rejects unknown option names, naming them', () => {
    expect(message(() => parseCallOptions('key', 'k', { stale: true }))).toContain('"stale"');
    expect(message(() => parseCallOptions('key', 'k', { index: 3, timeout: 1 }))).toMatch(
      /"index"|"timeout"/,
    );
  });

  it('rejects a wait above 10 minutes, naming wait', () => {
    expect(message(() => parseCallOptions('key', 'k', { wait: '10m1s' }))).toContain('wait');
    expect(message(() => parseCallOptions('key', 'k', { wait: '1h' }))).toContain('wait');
  });

  it('rejects a bad consistency, decode or schema, naming the option', () => {
    expect(message(() => parseCallOptions('key', 'k', { consistency: 'linearizable' }))).toContain(
      'consistency',
    );
    expect(message(() => parseCallOptions('key', 'k', { decode: 'yaml' }))).toContain('decode');
    expect(message(() => parseCallOptions('key', 'k', { schema: { parse: () => 1 } }))).toContain('schema');
    expect(message(() => parseCallOptions('key', 'k', { dc: '' }))).toContain('dc');
    expect(message(() => parseCallOptions('key', 'k', { token: 5 }))).toContain('token');
  });

  it.each([
    ['a/../b', '".." segment'],
    ['a/.', '"." segment'],
    ['a/./b', '"." segment'],
    ['..', '".." segment'],
    ['a//b', 'empty segment'],
    ['a\tb', 'control character'],
    ['a\nb', 'control character'],
    ['a\u007fb', 'control character'],
  ])('rejects the key %j, which Consul cannot serve, naming it (%s)', (key, why) => {
    for (const kind of ['key', 'prefix'] as const) {
      const text = message(() => parseCallOptions(kind, key, undefined));
      expect(text).toContain(`invalid option ${kind} ${JSON.stringify(key)}`);
      expect(text).toContain(why);
    }
  });

  it('accepts folder keys and prefixes ending in "/", and dots inside a segment', () => {
    for (const key of ['service/', 'service/db/', 'a.b/..c/d..', 'a/.hidden', 'ünïcode/ключ', 'a b/c']) {
      expect(parseCallOptions('key', key, undefined)).toEqual({});
      expect(parseCallOptions('prefix', key, undefined)).toEqual({});
    }
  });

  it('refuses an empty prefix with a message about the prefix', () => {
    const text = message(() => parseCallOptions('prefix', '', undefined));
    expect(text).toMatch(/^invalid option prefix "": must not be empty/);
    expect(text).not.toMatch(/\bkey\b(?! ?store)/);
  });

  it.each([
    ['a line feed', 'sEcR\neT'],
    ['a carriage return', 'sEcR\reT'],
    ['an emoji', 'sEcR🔑eT'],
    ['a NUL', 'sEcR\u0000eT'],
  ])('refuses a token with %s in a call, naming options.token and never the token', (_what, token) => {
    const text = message(() => parseCallOptions('key', 'k', { token }));
    expect(text).toContain('options.token');
    expect(text).not.toContain(token);
    expect(text).not.toContain('sEcR');
  });
});

describe('tokens in the discovery options', () => {
  const bad = 'secret\nvalue';
  it.each([
    ['options.token', { token: bad }],
    ['options.consul.defaults.token', { consul: { defaults: { token: bad } } }],
    ['options.consul.1.defaults.token', { consul: [{}, { defaults: { token: bad } }] }],
  ])('refuses a token that is no HTTP header value, naming %s', (where, options) => {
    const text = message(() => parseDiscoveryOptions(options));
    expect(text).toContain(where);
    expect(text).not.toContain('secret');
  });

  it('accepts tokens Consul makes, and Latin-1 ones Node can send', () => {
    for (const token of ['b1gs33cr3t-0000-0000-0000-000000000000', 'anonymous', 'caf\u00e9']) {
      expect(() => parseDiscoveryOptions({ token })).not.toThrow();
    }
  });
});

describe('namespace, partition and basic auth', () => {
  it('take the options first, then CONSUL_NAMESPACE, CONSUL_PARTITION and CONSUL_HTTP_AUTH from env', () => {
    const env = { CONSUL_NAMESPACE: 'ns-env', CONSUL_PARTITION: 'p-env', CONSUL_HTTP_AUTH: 'u:p' };
    const fromEnv = resolveDiscoveryDefaults({ env });
    expect(fromEnv).toMatchObject({ namespace: 'ns-env', partition: 'p-env' });
    expect(fromEnv.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    const given = resolveDiscoveryDefaults({
      env,
      namespace: 'ns',
      partition: 'p',
      httpAuth: { username: 'a', password: 'b:c' },
    });
    expect(given).toMatchObject({ namespace: 'ns', partition: 'p' });
    expect(given.authorization).toBe(`Basic ${Buffer.from('a:b:c').toString('base64')}`);
    expect(resolveDiscoveryDefaults({ env: {} })).not.toHaveProperty('authorization');
  });

  it('refuse credentials no header can carry, naming where they came from but not them', () => {
    const text = message(() => resolveDiscoveryDefaults({ env: { CONSUL_HTTP_AUTH: 'u:sEcR\neT' } }));
    expect(text).toContain('CONSUL_HTTP_AUTH');
    expect(text).not.toContain('sEcR');
    expect(message(() => resolveDiscoveryDefaults({ httpAuth: 'u:\r' }))).toContain('options.httpAuth');
    expect(message(() => parseDiscoveryOptions({ namespace: '' }))).toContain('namespace');
    expect(message(() => parseDiscoveryOptions({ httpAuth: { username: 'u' } }))).toContain('httpAuth');
    expect(parseCallOptions('key', 'k', { namespace: 'ns', partition: 'p' })).toEqual({
      namespace: 'ns',
      partition: 'p',
    });
  });
});
