/** Building (or adopting) the node-consul clients the SDK talks through: one per agent address. */
import Consul from 'consul';
import { readEnvConfig, readEnvToken } from './env.js';
import { type ConsulClientOptions, type LeaderDiscoveryOptions, isConsulClient } from './options.js';
import { checkToken } from './checks.js';

export interface ClientSetup {
  /** In failover order. */
  readonly clients: readonly Consul[];
  /** The clients the SDK made (and so destroys on close); a client passed in is the caller's. */
  readonly owned: readonly Consul[];
  /** Token from the environment or the first client's defaults, used when a call gives none. */
  readonly token?: string;
  readonly dc?: string;
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** node-consul keeps `defaults` from its options on the instance; read the token and dc from there. */
function clientDefaults(client: Consul): { token?: string; dc?: string } {
  const defaults = (client as unknown as { _defaults?: { token?: unknown; dc?: unknown } })._defaults;
  return {
    ...(typeof defaults?.token === 'string' && defaults.token ? { token: defaults.token } : {}),
    ...(typeof defaults?.dc === 'string' && defaults.dc ? { dc: defaults.dc } : {}),
  };
}

function makeClient(clientOptions: ConsulClientOptions): Consul {
  const secure = clientOptions.secure ?? false;
  const host = hostForUrl(clientOptions.host ?? '127.0.0.1');
  const baseUrl = `${secure ? 'https' : 'http'}://${host}:${clientOptions.port ?? 8500}/v1`;
  return new Consul({ ...clientOptions, baseUrl } as ConstructorParameters<typeof Consul>[0]);
}

function envClientOptions(env: Readonly<Record<string, string | undefined>>): ConsulClientOptions {
  const { address, tls } = readEnvConfig(env);
  return {
    host: address.host,
    port: address.port,
    secure: address.secure,
    ...(address.socketPath ? { socketPath: address.socketPath } : {}),
    ...tls,
  };
}

export function setUpClients(options: LeaderDiscoveryOptions): ClientSetup {
  const env = options.env ?? process.env;
  const given = options.consul;
  const entries = given === undefined ? [envClientOptions(env)] : Array.isArray(given) ? given : [given];
  const owned: Consul[] = [];
  const clients = entries.map((entry: ConsulClientOptions | Consul) => {
    if (isConsulClient(entry)) return entry;
    const client = makeClient(entry);
    owned.push(client);
    return client;
  });
  const first = clients[0];
  const defaults = first ? clientDefaults(first) : {};
  // A client passed in ready-made: its token was not seen by parseDiscoveryOptions.
  checkToken('options.consul.defaults.token', defaults.token);
  const token = defaults.token ?? readEnvToken(env);
  return {
    clients,
    owned,
    ...(token ? { token } : {}),
    ...(defaults.dc ? { dc: defaults.dc } : {}),
  };
}
