/**
 * Case 3, many keys: 100, 1,000 and 10,000 leader keys under one prefix,
 * followed through `leaders(prefix)` and through one `leader(key)` per key
 * (coalesced into the prefix's query). Per change to one key: latency to its
 * emission, requests and connections Consul sees (through the counting proxy),
 * CPU of this process (the SDK, but also the writer and the in-process proxy).
 * One key through `leader(key)` is the baseline measured the same way. (Memory
 * per key is case 4's.)
 */
import { performance } from 'node:perf_hooks';
import type { Subscription } from 'rxjs';
import { createLeaderDiscovery } from '@consul-leader/discovery';
import { startConsulAgent } from '../../scripts/consul-agent.js';
import { startProxy } from '../../test/support/proxy.js';

export interface ManyKeysRow {
  readonly keys: number;
  readonly mode: string;
  readonly firstLoadMs: number;
  readonly latencies: readonly number[];
  readonly kvRequestsPerChange: number;
  readonly sessionRequestsPerChange: number;
  readonly kvInFlight: number;
  readonly connections: number;
  readonly cpuMsPerChange: number;
}

async function put(address: string, ops: unknown[]): Promise<void> {
  const res = await fetch(`http://${address}/v1/txn`, { method: 'PUT', body: JSON.stringify(ops) });
  if (res.status !== 200) throw new Error(`txn: ${res.status} ${await res.text()}`);
}

async function session(address: string, name: string): Promise<string> {
  const res = await fetch(`http://${address}/v1/session/create`, {
    method: 'PUT',
    body: JSON.stringify({ Name: name, LockDelay: '0s' }),
  });
  return ((await res.json()) as { ID: string }).ID;
}

const value = (i: number, tag: string): string =>
  Buffer.from(JSON.stringify({ host: `10.0.${i >> 8}.${i & 255}`, port: 5432, tag })).toString('base64');

export async function runManyKeys(sizes: readonly number[], changes: number): Promise<ManyKeysRow[]> {
  const agent = await startConsulAgent({ hcl: 'limits { http_max_conns_per_client = 5000 }' });
  const proxy = await startProxy(agent);
  const rows: ManyKeysRow[] = [];
  try {
    for (const size of sizes) {
      const prefix = `fleet${size}/`;
      const holder = await session(agent.address, 'holder');
      for (let start = 0; start < size; start += 64) {
        const ops = [];
        for (let i = start; i < Math.min(size, start + 64); i += 1) {
          ops.push({
            KV: { Verb: 'lock', Key: `${prefix}s${i}/leader`, Value: value(i, 'a'), Session: holder },
          });
        }
        await put(agent.address, ops);
      }
      // One key through leader(key) is the baseline: the same writer, proxy and process.
      const modes =
        size === 1
          ? (['leader(key) per key'] as const)
          : (['leaders(prefix)', 'leader(key) per key'] as const);
      for (const mode of modes) {
        rows.push(await measure(agent.address, proxy, prefix, size, holder, mode, changes));
      }
    }
  } finally {
    await proxy.close();
    await agent.destroy();
  }
  return rows;
}

async function measure(
  address: string,
  proxy: Awaited<ReturnType<typeof startProxy>>,
  prefix: string,
  size: number,
  holder: string,
  mode: 'leaders(prefix)' | 'leader(key) per key',
  changes: number,
): Promise<ManyKeysRow> {
  const discovery = createLeaderDiscovery({ consul: { host: proxy.host, port: proxy.port } });
  const subscriptions: Subscription[] = [];
  // The tag each key's leader shows now; a waiter per key resolves when it sees the expected tag.
  const seen = new Map<string, string | null>();
  const waiters = new Map<string, { tag: string | null; resolve: () => void }>();
  const observe = (key: string, tag: string | null): void => {
    seen.set(key, tag);
    const waiter = waiters.get(key);
    if (waiter && waiter.tag === tag) {
      waiters.delete(key);
      waiter.resolve();
    }
  };
  const t0 = performance.now();
  if (mode === 'leaders(prefix)') {
    subscriptions.push(
      discovery.leaders(prefix).subscribe((leaders) => {
        for (let i = 0; i < size; i += 1) {
          const key = `${prefix}s${i}/leader`;
          const tag = (leaders.get(key)?.node as { tag?: string } | undefined)?.tag ?? null;
          if (seen.get(key) !== tag) observe(key, tag);
        }
      }),
    );
  } else {
    for (let i = 0; i < size; i += 1) {
      const key = `${prefix}s${i}/leader`;
      subscriptions.push(
        discovery
          .leader(key)
          .subscribe((leader) => observe(key, (leader?.node as { tag?: string } | null)?.tag ?? null)),
      );
    }
  }
  // Every key reported (earlier changes may have left some without a leader).
  while (seen.size < size) await new Promise((r) => setTimeout(r, 5));
  const firstLoadMs = performance.now() - t0;

  const before = proxy.requests.length;
  const cpu0 = process.cpuUsage();
  const latencies: number[] = [];
  let tag = 'a';
  for (let c = 0; c < changes; c += 1) {
    const i = (c * 7919) % size;
    const key = `${prefix}s${i}/leader`;
    const release = seen.get(key) !== null;
    tag = `c${c}`;
    const expected = release ? null : tag;
    const done = new Promise<void>((resolve) => waiters.set(key, { tag: expected, resolve }));
    const start = performance.now();
    await put(address, [
      release
        ? { KV: { Verb: 'unlock', Key: key, Value: '', Session: holder } }
        : { KV: { Verb: 'lock', Key: key, Value: value(i, tag), Session: holder } },
    ]);
    await done;
    latencies.push(performance.now() - start);
  }
  const cpu = process.cpuUsage(cpu0);
  const during = proxy.requests.slice(before);
  await new Promise((r) => setTimeout(r, 200)); // let the next blocking read go out
  const row: ManyKeysRow = {
    keys: size,
    mode,
    firstLoadMs,
    latencies,
    kvRequestsPerChange: during.filter((r) => r.path.startsWith('/v1/kv/')).length / changes,
    sessionRequestsPerChange: during.filter((r) => r.path.startsWith('/v1/session/')).length / changes,
    kvInFlight: proxy.inFlight(`/v1/kv/${prefix}`),
    connections: proxy.openConnections(),
    cpuMsPerChange: (cpu.user + cpu.system) / 1000 / changes,
  };
  for (const s of subscriptions) s.unsubscribe();
  discovery.close();
  return row;
}
