/**
 * The Consul CLI's environment conventions (`consul` commands read the same
 * variables), turned into client options.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { checkToken } from './checks.js';

export interface ResolvedAddress {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** For `unix://` addresses. */
  readonly socketPath?: string;
}

export interface EnvConfig {
  readonly address: ResolvedAddress;
  readonly token?: string;
  readonly tls: {
    ca?: string[];
    cert?: string;
    key?: string;
    rejectUnauthorized?: boolean;
    servername?: string;
  };
}

type Env = Readonly<Record<string, string | undefined>>;

function truthy(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|t|true|yes|on)$/i.test(value)) return true;
  if (/^(0|f|false|no|off)$/i.test(value)) return false;
  throw new InvalidOptionError(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

function readFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new InvalidOptionError(`${name}: cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

/** Parses `host:port`, `[v6]:port`, `http(s)://host:port`, `unix:///path`. */
export function parseAddress(name: string, value: string, secureByDefault = false): ResolvedAddress {
  const text = value.trim();
  if (text.startsWith('unix://')) {
    return { secure: false, host: 'localhost', port: 80, socketPath: text.slice('unix://'.length) };
  }
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `${secureByDefault ? 'https' : 'http'}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidOptionError(
      `${name} is not an address (host:port or http(s)://host:port): ${JSON.stringify(value)}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidOptionError(`${name} must use http, https or unix, got ${url.protocol}`);
  }
  if (!url.hostname || (url.pathname !== '/' && url.pathname !== '')) {
    throw new InvalidOptionError(
      `${name} is not an address (host:port or http(s)://host:port): ${JSON.stringify(value)}`,
    );
  }
  const secure = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : secure && /^https:/i.test(text) ? 443 : 8500;
  return { secure, host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

/** `CONSUL_HTTP_TOKEN`, else the contents of `CONSUL_HTTP_TOKEN_FILE`. */
export function readEnvToken(env: Env): string | undefined {
  const token = env.CONSUL_HTTP_TOKEN?.trim();
  checkToken('CONSUL_HTTP_TOKEN', token);
  if (token) return token;
  if (!env.CONSUL_HTTP_TOKEN_FILE) return undefined;
  const fromFile = readFile('CONSUL_HTTP_TOKEN_FILE', env.CONSUL_HTTP_TOKEN_FILE).trim();
  checkToken('CONSUL_HTTP_TOKEN_FILE', fromFile);
  return fromFile || undefined;
}

export function readEnvConfig(env: Env): EnvConfig {
  const sslFlag = truthy('CONSUL_HTTP_SSL', env.CONSUL_HTTP_SSL);
  const addr = env.CONSUL_HTTP_ADDR?.trim();
  let address: ResolvedAddress = addr
    ? parseAddress('CONSUL_HTTP_ADDR', addr)
    : { secure: false, host: '127.0.0.1', port: 8500 };
  // Like Consul's own client: the flag picks the scheme of a bare host:port, and never
  // downgrades an explicit https:// (nor upgrades an explicit http://).
  const explicitScheme = addr !== undefined && /^[a-z]+:\/\//i.test(addr);
  if (sslFlag !== undefined && !address.socketPath && !explicitScheme) {
    address = { ...address, secure: sslFlag };
  }

  const token = readEnvToken(env);

  const tls: EnvConfig['tls'] = {};
  const ca: string[] = [];
  if (env.CONSUL_CACERT) ca.push(readFile('CONSUL_CACERT', env.CONSUL_CACERT));
  if (env.CONSUL_CAPATH) {
    let files: string[];
    try {
      files = readdirSync(env.CONSUL_CAPATH).filter((f) => /\.(pem|crt|cer)$/i.test(f));
    } catch (cause) {
      throw new InvalidOptionError(`CONSUL_CAPATH: cannot list ${env.CONSUL_CAPATH}`, { cause });
    }
    for (const f of files) ca.push(readFile('CONSUL_CAPATH', join(env.CONSUL_CAPATH, f)));
  }
  if (ca.length > 0) tls.ca = ca;
  if (env.CONSUL_CLIENT_CERT) tls.cert = readFile('CONSUL_CLIENT_CERT', env.CONSUL_CLIENT_CERT);
  if (env.CONSUL_CLIENT_KEY) tls.key = readFile('CONSUL_CLIENT_KEY', env.CONSUL_CLIENT_KEY);
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new InvalidOptionError('CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY must be set together');
  }
  const verify = truthy('CONSUL_HTTP_SSL_VERIFY', env.CONSUL_HTTP_SSL_VERIFY);
  if (verify === false) tls.rejectUnauthorized = false;
  if (env.CONSUL_TLS_SERVER_NAME) tls.servername = env.CONSUL_TLS_SERVER_NAME;

  return token === undefined ? { address, tls } : { address, token, tls };
}
