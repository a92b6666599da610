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
import type Consul from 'consul';
import { InvalidOptionError } from '../errors.js';

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

/** The `http.request` options papi copies from a client's options to every request. */
const CLIENT_OPTIONS = [
  'agent',
  'createConnection',
  'family',
  'hints',
  'localAddress',
  'localPort',
  'lookup',
  'maxHeaderSize',
  'setHost',
  'socketPath',
  // TLS
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

const USER_AGENT = 'consul-leader';

export interface Endpoint {
  readonly request: typeof http.request;
  /** Every request's options but `path` and `headers`. */
  readonly options: http.RequestOptions;
  /** The base URL's path (`/v1`), to which a request's path is appended. */
  readonly basePath: string;
  /** The client's default headers and the SDK's user agent; a request's own are added on top. */
  readonly headers: Readonly<Record<string, string>>;
}

export function endpointOf(client: Consul): Endpoint {
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
  return {
    request: secure ? https.request : http.request,
    options,
    basePath: base.path ?? '',
    headers: { 'user-agent': USER_AGENT, ...opts.headers },
  };
}
