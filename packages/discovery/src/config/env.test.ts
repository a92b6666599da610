import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { parseAddress, readEnvConfig, readEnvToken } from './env.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'consul-leader-env-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function thrown(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).code).toBe('INVALID_OPTION');
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('parseAddress', () => {
  it.each([
    ['127.0.0.1:8500', { secure: false, host: '127.0.0.1', port: 8500 }],
    ['consul.service:9500', { secure: false, host: 'consul.service', port: 9500 }],
    ['consul.service', { secure: false, host: 'consul.service', port: 8500 }],
    ['http://consul:8500', { secure: false, host: 'consul', port: 8500 }],
    ['http://consul', { secure: false, host: 'consul', port: 8500 }],
    ['https://consul:8501', { secure: true, host: 'consul', port: 8501 }],
    ['https://consul', { secure: true, host: 'consul', port: 443 }],
    ['HTTPS://Consul:8501', { secure: true, host: 'consul', port: 8501 }],
    ['http://consul:8500/', { secure: false, host: 'consul', port: 8500 }],
    ['[::1]:8500', { secure: false, host: '::1', port: 8500 }],
    ['https://[2001:db8::1]:8501', { secure: true, host: '2001:db8::1', port: 8501 }],
    ['  10.0.0.1:8500  ', { secure: false, host: '10.0.0.1', port: 8500 }],
  ])('parses %j', (value, expected) => {
    expect(parseAddress('CONSUL_HTTP_ADDR', value)).toEqual(expected);
  });

  it('parses unix:// addresses into a socket path', () => {
    expect(parseAddress('CONSUL_HTTP_ADDR', 'unix:///tmp/x.sock')).toEqual({
      secure: false,
      host: 'localhost',
      port: 80,
      socketPath: '/tmp/x.sock',
    });
  });

  it('uses https for scheme-less addresses when secure by default, keeping port 8500', () => {
    expect(parseAddress('X', 'consul', true)).toEqual({ secure: true, host: 'consul', port: 8500 });
    expect(parseAddress('X', 'http://consul', true)).toEqual({ secure: false, host: 'consul', port: 8500 });
  });

  it.each(['ftp://consul:21', 'http://consul:8500/v1/kv', 'consul:99999', 'consul:port', 'http://', '::::'])(
    'refuses %j with an error naming the variable',
    (value) => {
      expect(thrown(() => parseAddress('CONSUL_HTTP_ADDR', value)).message).toContain('CONSUL_HTTP_ADDR');
    },
  );
});

describe('readEnvConfig', () => {
  it('defaults to http://127.0.0.1:8500 without token or TLS options', () => {
    expect(readEnvConfig({})).toEqual({ address: { secure: false, host: '127.0.0.1', port: 8500 }, tls: {} });
  });

  it('reads CONSUL_HTTP_ADDR with and without a scheme', () => {
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: '10.1.2.3:8500' }).address).toEqual({
      secure: false,
      host: '10.1.2.3',
      port: 8500,
    });
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: 'http://10.1.2.3:8500' }).address.secure).toBe(false);
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: 'https://10.1.2.3:8501' }).address).toEqual({
      secure: true,
      host: '10.1.2.3',
      port: 8501,
    });
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: '[::1]:8500' }).address.host).toBe('::1');
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: 'unix:///tmp/x.sock' }).address.socketPath).toBe('/tmp/x.sock');
    expect(readEnvConfig({ CONSUL_HTTP_ADDR: '' }).address).toEqual({
      secure: false,
      host: '127.0.0.1',
      port: 8500,
    });
  });

  it.each(['true', 'TRUE', '1', 't', 'yes', 'on'])('turns HTTPS on with CONSUL_HTTP_SSL=%s', (value) => {
    expect(readEnvConfig({ CONSUL_HTTP_SSL: value, CONSUL_HTTP_ADDR: 'consul:8501' }).address).toEqual({
      secure: true,
      host: 'consul',
      port: 8501,
    });
    expect(readEnvConfig({ CONSUL_HTTP_SSL: value }).address).toEqual({
      secure: true,
      host: '127.0.0.1',
      port: 8500,
    });
  });

  it('keeps http with CONSUL_HTTP_SSL=false', () => {
    expect(readEnvConfig({ CONSUL_HTTP_SSL: 'false', CONSUL_HTTP_ADDR: 'consul:8500' }).address.secure).toBe(
      false,
    );
  });

  it('never downgrades an explicit https:// address to plain HTTP', () => {
    const config = readEnvConfig({ CONSUL_HTTP_ADDR: 'https://consul:8501', CONSUL_HTTP_SSL: 'false' });
    expect(config.address.secure).toBe(true);
  });

  it('does not apply CONSUL_HTTP_SSL to unix sockets', () => {
    expect(
      readEnvConfig({ CONSUL_HTTP_ADDR: 'unix:///tmp/x.sock', CONSUL_HTTP_SSL: 'true' }).address.secure,
    ).toBe(false);
  });

  it('refuses a CONSUL_HTTP_SSL that is not a boolean, naming it', () => {
    expect(thrown(() => readEnvConfig({ CONSUL_HTTP_SSL: 'maybe' })).message).toContain('CONSUL_HTTP_SSL');
  });

  it('refuses a bad CONSUL_HTTP_ADDR, naming it', () => {
    expect(thrown(() => readEnvConfig({ CONSUL_HTTP_ADDR: 'gopher://x' })).message).toContain(
      'CONSUL_HTTP_ADDR',
    );
  });

  it('reads CONSUL_HTTP_TOKEN, trimmed', () => {
    expect(readEnvConfig({ CONSUL_HTTP_TOKEN: ' secret-token \n' }).token).toBe('secret-token');
  });

  it('reads CONSUL_HTTP_TOKEN_FILE when CONSUL_HTTP_TOKEN is unset or blank', () => {
    const path = file('token', 'file-token\n');
    expect(readEnvConfig({ CONSUL_HTTP_TOKEN_FILE: path }).token).toBe('file-token');
    expect(readEnvConfig({ CONSUL_HTTP_TOKEN: '  ', CONSUL_HTTP_TOKEN_FILE: path }).token).toBe('file-token');
    expect(readEnvToken({ CONSUL_HTTP_TOKEN_FILE: path })).toBe('file-token');
  });

  it('prefers CONSUL_HTTP_TOKEN over CONSUL_HTTP_TOKEN_FILE', () => {
    const path = file('token2', 'file-token');
    expect(readEnvConfig({ CONSUL_HTTP_TOKEN: 'env-token', CONSUL_HTTP_TOKEN_FILE: path }).token).toBe(
      'env-token',
    );
  });

  it.each([
    ['a line feed', 'sEcR\neT'],
    ['a carriage return', 'sEcR\reT'],
    ['an emoji', 'sEcR🔑eT'],
  ])(
    'refuses a token with %s in CONSUL_HTTP_TOKEN or its file, naming the variable, never the token',
    (_what, token) => {
      expect(() => readEnvConfig({ CONSUL_HTTP_TOKEN: token })).toThrow(InvalidOptionError);
      const messageOf = (env: Record<string, string>): string => {
        try {
          readEnvToken(env);
        } catch (error) {
          expect((error as InvalidOptionError).code).toBe('INVALID_OPTION');
          return (error as Error).message;
        }
        throw new Error('expected an InvalidOptionError');
      };
      const fromEnv = messageOf({ CONSUL_HTTP_TOKEN: token });
      expect(fromEnv).toContain('CONSUL_HTTP_TOKEN');
      expect(fromEnv).not.toContain('sEcR');
      const fromFile = messageOf({ CONSUL_HTTP_TOKEN_FILE: file('bad-token', `${token}\n`) });
      expect(fromFile).toContain('CONSUL_HTTP_TOKEN_FILE');
      expect(fromFile).not.toContain('sEcR');
    },
  );

  it('has no token for an empty token file', () => {
    const config = readEnvConfig({ CONSUL_HTTP_TOKEN_FILE: file('empty', '\n') });
    expect(config).not.toHaveProperty('token');
  });

  it('refuses a missing token file, naming the variable', () => {
    const error = thrown(() => readEnvConfig({ CONSUL_HTTP_TOKEN_FILE: join(dir, 'nope') }));
    expect(error.message).toContain('CONSUL_HTTP_TOKEN_FILE');
  });

  it('reads CONSUL_CACERT and CONSUL_CAPATH into tls.ca', () => {
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
    expect(readEnvConfig({ CONSUL_CACERT: ca }).tls).toEqual({
      ca: ['-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n'],
    });
    const capath = mkdtempSync(join(dir, 'capath-'));
    writeFileSync(join(capath, 'a.pem'), 'A');
    writeFileSync(join(capath, 'b.crt'), 'B');
    writeFileSync(join(capath, 'README'), 'not a cert');
    const tls = readEnvConfig({ CONSUL_CACERT: ca, CONSUL_CAPATH: capath }).tls;
    expect(tls.ca?.[0]).toContain('CA');
    expect([...(tls.ca ?? []).slice(1)].sort()).toEqual(['A', 'B']);
  });

  it('refuses an unreadable CONSUL_CACERT or CONSUL_CAPATH, naming it', () => {
    expect(thrown(() => readEnvConfig({ CONSUL_CACERT: join(dir, 'missing.pem') })).message).toContain(
      'CONSUL_CACERT',
    );
    expect(thrown(() => readEnvConfig({ CONSUL_CAPATH: join(dir, 'no-dir') })).message).toContain(
      'CONSUL_CAPATH',
    );
  });

  it('reads the client certificate and key together', () => {
    const cert = file('client.crt', 'CERT');
    const key = file('client.key', 'KEY');
    expect(readEnvConfig({ CONSUL_CLIENT_CERT: cert, CONSUL_CLIENT_KEY: key }).tls).toEqual({
      cert: 'CERT',
      key: 'KEY',
    });
    expect(thrown(() => readEnvConfig({ CONSUL_CLIENT_CERT: cert })).message).toContain('CONSUL_CLIENT_KEY');
    expect(thrown(() => readEnvConfig({ CONSUL_CLIENT_KEY: key })).message).toContain('CONSUL_CLIENT_CERT');
  });

  it('turns certificate checks off only with CONSUL_HTTP_SSL_VERIFY=false', () => {
    expect(readEnvConfig({ CONSUL_HTTP_SSL_VERIFY: 'false' }).tls.rejectUnauthorized).toBe(false);
    expect(readEnvConfig({ CONSUL_HTTP_SSL_VERIFY: '0' }).tls.rejectUnauthorized).toBe(false);
    expect(readEnvConfig({ CONSUL_HTTP_SSL_VERIFY: 'true' }).tls).not.toHaveProperty('rejectUnauthorized');
    expect(readEnvConfig({}).tls).not.toHaveProperty('rejectUnauthorized');
    expect(thrown(() => readEnvConfig({ CONSUL_HTTP_SSL_VERIFY: 'nah' })).message).toContain(
      'CONSUL_HTTP_SSL_VERIFY',
    );
  });

  it('reads CONSUL_TLS_SERVER_NAME', () => {
    expect(readEnvConfig({ CONSUL_TLS_SERVER_NAME: 'server.dc1.consul' }).tls.servername).toBe(
      'server.dc1.consul',
    );
  });
});
