/**
 * Where and how to reach one Consul agent, read once from a node-consul
 * client: its base URL, keep-alive agent, TLS options, socket path and
 * default headers (papi keeps them normalised on `_opts`). The transport then
 * sends each request with Node's `http`/`https` directly: papi's per-request
 * pipeline (option merging, middleware, a stream pipe) is on the path of every
 * change, and case 1 of BENCHMARKS.md measures what it cost.
 */
import http from 'node:http';
import https from 'node:https';
import type { SecureClientSessionOptions } from 'node:http2';
import type Consul from 'consul';
import { InvalidOptionError } from '../errors.js';
import { H2Sessions } from './h2-sessions.js';

/** What papi keeps of a client's options (not in node-consul's published types). */
interface PapiOptions {
  readonly baseUrl?: {
    readonly protocol?: string;
    readonly hostname?: string;
    readonly port?: string;
    readonly auth?: string;
    readonly path?: string;
  };
  readonly socketPath?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly [option: string]: unknown;
}

/** TLS options, and how to reach the host: `http2.connect` takes them as `https.request` does. */
const TLS_OPTIONS = [
  'family',
  'localAddress',
  'lookup',
  'ca',
  'cert',
  'ciphers',
  'clientCertEngine',
  'crl',
  'dhparam',
  'ecdhCurve',
  'honorCipherOrder',
  'key',
  'passphrase',
  'pfx',
  'rejectUnauthorized',
  'secureOptions',
  'secureProtocol',
  'servername',
  'sessionIdContext',
] as const;

/** The `http.request` options papi copies from a client's options to every request. */
const CLIENT_OPTIONS = [
  'agent',
  'createConnection',
  'hints',
  'localPort',
  'maxHeaderSize',
  'setHost',
  'socketPath',
  ...TLS_OPTIONS,
] as const;

const USER_AGENT = 'consul-leader';

export interface Endpoint {
  readonly request: typeof http.request;
  /** Every request's options but `path` and `headers`. */
  readonly options: http.RequestOptions;
  /** The base URL's path (`/v1`), to which a request's path is appended. */
  readonly basePath: string;
  /** The client's default headers and the SDK's user agent; a request's own are added on top. */
  readonly headers: Readonly<Record<string, string>>;
  /** With `http2` and an HTTPS agent: the HTTP/2 connections every request goes over instead. */
  readonly h2?: H2Sessions;
}

export interface EndpointOptions {
  /** Over HTTPS, send requests over HTTP/2 (h2-sessions.ts); plain HTTP stays HTTP/1.1 (Consul has no h2c). */
  readonly http2?: boolean;
  /** An `Authorization` header for every request (basic auth in front of the agents). */
  readonly authorization?: string;
}

function h2SessionsOf(options: http.RequestOptions): H2Sessions {
  const host = options.hostname ?? 'localhost';
  const origin = `https://${host.includes(':') ? `[${host}]` : host}:${options.port ?? 443}`;
  const tls: Record<string, unknown> = {};
  const given = options as Record<string, unknown>;
  for (const name of TLS_OPTIONS) if (given[name] !== undefined) tls[name] = given[name];
  return new H2Sessions(origin, tls as SecureClientSessionOptions);
}

export function endpointOf(client: Consul, endpointOptions: EndpointOptions = {}): Endpoint {
  const opts = (client as unknown as { _opts?: PapiOptions })._opts;
  const base = opts?.baseUrl;
  if (!opts || !base || typeof base.protocol !== 'string') {
    throw new InvalidOptionError('consul: not a node-consul client (it has no base URL)');
  }
  const secure = base.protocol === 'https:';
  const picked: Record<string, unknown> = {};
  for (const name of CLIENT_OPTIONS) {
    if (opts[name] !== undefined) picked[name] = opts[name];
  }
  const options = picked as http.RequestOptions;
  if (base.auth) options.auth = base.auth;
  if (!opts.socketPath) {
    // URL keeps an IPv6 host in brackets; sockets want the bare address (Node adds them back in Host).
    options.hostname = base.hostname?.replace(/^\[(.*)\]$/, '$1');
    options.port = base.port ? Number(base.port) : secure ? 443 : 80;
  }
  options.method = 'GET';
  const h2 = secure && endpointOptions.http2 && !opts.socketPath ? h2SessionsOf(options) : undefined;
  const headers: Record<string, string> = { 'user-agent': USER_AGENT };
  // HTTP/2 wants lowercase header names; HTTP/1.1 does not mind.
  for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name.toLowerCase()] = value;
  // HTTP/1.1 sends the base URL's credentials from `auth`; HTTP/2 needs the header itself.
  if (h2 && base.auth)
    headers.authorization = `Basic ${Buffer.from(decodeURIComponent(base.auth)).toString('base64')}`;
  if (endpointOptions.authorization) {
    // The discovery's basic auth replaces a client URL's own, for HTTP/1.1 as for HTTP/2.
    delete options.auth;
    headers.authorization = endpointOptions.authorization;
  }
  return {
    request: secure ? https.request : http.request,
    options,
    basePath: base.path ?? '',
    headers,
    ...(h2 ? { h2 } : {}),
  };
}
