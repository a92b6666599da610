import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import { describe, expect, it } from 'vitest';
import { endpointOf } from './endpoint.js';

describe('endpointOf', () => {
  it("takes host, port, base path and keep-alive agent from a node-consul client's options", () => {
    const client = new Consul({ host: '127.0.0.5', port: 8600 });
    const endpoint = endpointOf(client);
    expect(endpoint.request).toBe(http.request);
    expect(endpoint.options).toMatchObject({ hostname: '127.0.0.5', port: 8600, method: 'GET' });
    expect(endpoint.options.agent).toBeInstanceOf(http.Agent);
    expect(endpoint.basePath).toBe('/v1');
    expect(endpoint.headers['user-agent']).toBe('consul-leader');
    client.destroy();
  });

  it('uses https with the TLS options, and port 443 when the URL has none', () => {
    const client = new Consul({
      baseUrl: 'https://consul.internal/v1',
      ca: 'CA PEM',
      rejectUnauthorized: false,
      servername: 'consul',
    } as ConstructorParameters<typeof Consul>[0]);
    const endpoint = endpointOf(client);
    expect(endpoint.request).toBe(https.request);
    expect(endpoint.options).toMatchObject({
      hostname: 'consul.internal',
      port: 443,
      ca: 'CA PEM',
      rejectUnauthorized: false,
      servername: 'consul',
    });
    expect(endpoint.options.agent).toBeInstanceOf(https.Agent);
    client.destroy();
  });

  it('connects to an IPv6 host without its URL brackets', () => {
    const client = new Consul({ baseUrl: 'http://[::1]:8500/v1' } as ConstructorParameters<typeof Consul>[0]);
    expect(endpointOf(client).options).toMatchObject({ hostname: '::1', port: 8500 });
    client.destroy();
  });

  it('goes through a unix socket when given one, with no host or port', () => {
    const client = new Consul({ socketPath: '/run/consul.sock' } as ConstructorParameters<typeof Consul>[0]);
    const { options } = endpointOf(client);
    expect(options.socketPath).toBe('/run/consul.sock');
    expect(options.hostname).toBeUndefined();
    expect(options.port).toBeUndefined();
    client.destroy();
  });

  it("keeps the client's default headers, basic auth from the URL", () => {
    const client = new Consul({
      baseUrl: 'http://user:secret@127.0.0.1:8500/v1',
      headers: { 'x-team': 'edge' },
    } as ConstructorParameters<typeof Consul>[0]);
    const endpoint = endpointOf(client);
    expect(endpoint.headers).toMatchObject({ 'x-team': 'edge', 'user-agent': 'consul-leader' });
    expect(endpoint.options.auth).toBe('user:secret');
    client.destroy();
  });

  it('with http2, connects over HTTP/2 to an HTTPS agent only, with its TLS options and credentials', () => {
    const secure = new Consul({
      baseUrl: 'https://user:secret@[::1]:8501/v1',
      ca: 'CA PEM',
      servername: 'consul',
    } as ConstructorParameters<typeof Consul>[0]);
    const endpoint = endpointOf(secure, { http2: true });
    expect(endpoint.h2?.origin).toBe('https://[::1]:8501');
    expect(endpoint.h2?.options).toEqual({ ca: 'CA PEM', servername: 'consul' });
    expect(endpoint.headers.authorization).toBe(`Basic ${Buffer.from('user:secret').toString('base64')}`);
    expect(endpointOf(secure).h2).toBeUndefined();
    secure.destroy();
    const plain = new Consul({ host: '127.0.0.5', port: 8500 });
    expect(endpointOf(plain, { http2: true }).h2).toBeUndefined();
    plain.destroy();
  });

  it('refuses an object that is not a node-consul client with INVALID_OPTION', () => {
    expect(() => endpointOf({} as Consul)).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/not a node-consul client/),
      }),
    );
  });
});
