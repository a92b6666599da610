/** Building (or adopting) the node-consul client the SDK talks through. */
import Consul from 'consul';
import { readEnvConfig, readEnvToken } from './env.js';
import { type ConsulClientOptions, type LeaderDiscoveryOptions, isConsulClient } from './options.js';

export interface ClientSetup {
  readonly client: Consul;
  /** Whether the SDK made the client (and so destroys its agent on close). */
  readonly owned: boolean;
  /** Token from the environment or the client's own defaults, used when a call gives none. */
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

export function setUpClient(options: LeaderDiscoveryOptions): ClientSetup {
  const given = options.consul;
  if (isConsulClient(given)) return { client: given, owned: false, ...clientDefaults(given) };

  const env = options.env ?? process.env;
  let clientOptions: ConsulClientOptions & { baseUrl?: string };
  if (given) {
    clientOptions = { ...given };
  } else {
    const { address, tls } = readEnvConfig(env);
    clientOptions = {
      host: address.host,
      port: address.port,
      secure: address.secure,
      ...(address.socketPath ? { socketPath: address.socketPath } : {}),
      ...tls,
    };
  }
  const secure = clientOptions.secure ?? false;
  const base = `${secure ? 'https' : 'http'}://${hostForUrl(clientOptions.host ?? '127.0.0.1')}:${clientOptions.port ?? 8500}/v1`;
  const client = new Consul({ ...clientOptions, baseUrl: base } as ConstructorParameters<typeof Consul>[0]);
  const defaults = clientDefaults(client);
  const token = defaults.token ?? readEnvToken(env);
  return {
    client,
    owned: true,
    ...(token ? { token } : {}),
    ...(defaults.dc ? { dc: defaults.dc } : {}),
  };
}
