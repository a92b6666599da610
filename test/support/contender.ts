/**
 * The write side, for tests: a session that campaigns for a key the way
 * Consul's leader-election guide describes (create a session, acquire the key
 * with a descriptor as the value), through the `consul` package.
 */
import Consul from 'consul';

export interface SessionSpec {
  readonly name?: string;
  readonly ttl?: string;
  readonly behavior?: 'release' | 'delete';
  /** Default '0s' so tests can re-acquire at once. */
  readonly lockDelay?: string;
  readonly checks?: readonly string[];
}

export function consulClient(address: string, token?: string): Consul {
  const [host, port] = address.split(':');
  return new Consul({
    host: host ?? '127.0.0.1',
    port: Number(port ?? 8500),
    ...(token ? { defaults: { token } } : {}),
  });
}

export async function createSession(client: Consul, spec: SessionSpec = {}): Promise<string> {
  const body: Record<string, unknown> = {
    name: spec.name ?? 'contender',
    behavior: spec.behavior ?? 'release',
    lockdelay: spec.lockDelay ?? '0s',
  };
  if (spec.ttl) body.ttl = spec.ttl;
  if (spec.checks) body.checks = spec.checks;
  // Right after an agent (re)starts, its node may have a Raft leader but not yet be in the catalog.
  for (let tries = 1; ; tries += 1) {
    try {
      const created = (await client.session.create(body)) as { ID: string };
      return created.ID;
    } catch (error) {
      if (tries >= 50 || !/Missing (node|check 'serfHealth') registration/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** PUT ?acquire; resolves whether the lock was taken. Value strings are sent as is. */
export async function acquire(
  client: Consul,
  key: string,
  session: string,
  value: string | Buffer,
  flags?: string,
): Promise<boolean> {
  const opts: Record<string, unknown> = { key, value, acquire: session };
  if (flags !== undefined) opts.flags = flags;
  return (await client.kv.set(opts as never)) === true;
}

export async function release(
  client: Consul,
  key: string,
  session: string,
  value?: string,
): Promise<boolean> {
  const opts: Record<string, unknown> = { key, value: value ?? '', release: session };
  return (await client.kv.set(opts as never)) === true;
}

/** A plain write (no lock change). */
export async function put(client: Consul, key: string, value: string | Buffer): Promise<void> {
  await client.kv.set(key, value as string);
}

export async function destroySession(client: Consul, session: string): Promise<void> {
  await client.session.destroy(session);
}
