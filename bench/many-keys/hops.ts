/**
 * How a case 3 watcher reaches Consul, and how what it sends is counted on
 * the way: through a counting proxy (test/support/proxy.ts), which sees every
 * request and connection; or, over HTTPS, through a TCP pass-through
 * (test/support/tcp-proxy.ts), which counts connections, its requests being
 * the HTTP/2 streams its SDK opened, counted in its thread (h2-streams.ts).
 * And the two ways of the split rows, a new hop for each configuration.
 */
import type { ConsulAgent } from '../../scripts/consul-agent.js';
import { type ConsulProxy, type ProxiedRequest, startProxy } from '../../test/support/proxy.js';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import type { TlsAgent } from '../../test/support/tls.js';
import type { RequestCounts, Watcher } from './measure.js';
import type { ManyKeysUsage } from './protocol.js';
import type { SplitWay } from './rows.js';

/** How a watcher's requests and connections are counted. */
export type Counted = Pick<Watcher, 'requests' | 'connections'>;

/**
 * What a counting proxy received: every request goes through it; with
 * `openQueries`, also the prefixes of the recursive reads it holds now.
 */
export const viaProxy = (proxy: ConsulProxy, prefix: string, openQueries = false): Counted => ({
  requests: (): RequestCounts => ({
    kv: proxy.requests.filter((r) => r.path.startsWith('/v1/kv/')).length,
    session: proxy.requests.filter((r) => r.path.startsWith('/v1/session/')).length,
    all: proxy.requests.length,
    kvInFlight: proxy.inFlight(`/v1/kv/${prefix}`),
    ...(openQueries ? { recursivePrefixes: openRecursivePrefixes(proxy, prefix) } : {}),
  }),
  connections: () => ({ accepted: proxy.connectionsAccepted(), open: proxy.openConnections() }),
});

/**
 * The prefixes of the recursive reads under `prefix` that a counting proxy is
 * holding now: of each path, the last request, if it has no answer yet (the
 * proxy notes a status once the answer is sent; an aborted read is followed by
 * a later one of the same path).
 */
function openRecursivePrefixes(proxy: ConsulProxy, prefix: string): string[] {
  const last = new Map<string, ProxiedRequest>();
  for (const request of proxy.requests) {
    if (request.path.startsWith(`/v1/kv/${prefix}`) && request.query.has('recurse')) {
      last.set(request.path, request);
    }
  }
  return [...last].flatMap(([path, request]) =>
    request.status === undefined ? [path.slice('/v1/kv/'.length)] : [],
  );
}

/** The HTTP/2 streams the thread's SDK opened (over TLS, no proxy sees them). */
const streamCounts = ({ streams }: ManyKeysUsage): RequestCounts => ({
  kv: streams.kv,
  session: streams.session,
  all: streams.all,
  kvInFlight: streams.kvOpen,
  recursivePrefixes: streams.kvOpenPaths.flatMap((path) => {
    const url = new URL(path, 'https://consul');
    return url.searchParams.has('recurse') ? [decodeURIComponent(url.pathname.slice('/v1/kv/'.length))] : [];
  }),
});

/**
 * The HTTP/2 rows' way: `http2: true` to an HTTPS-only agent, through a TCP
 * pass-through each, `splitPrefixes` left to its default (split) or `false`.
 */
export const overHttps = (agent: TlsAgent, ca: string): SplitWay => ({
  over: 'over HTTPS',
  names: ['splitPrefixes: false', 'split'],
  async open(_row, split) {
    const tcp = await startTcpProxy(agent.host, agent.port);
    return {
      via: { host: agent.host, port: tcp.port, http2: { ca, split } },
      requests: streamCounts,
      connections: () => ({ accepted: tcp.accepted(), open: tcp.open() }),
      close: () => tcp.close(),
    };
  },
});

/**
 * The plain-HTTP split rows' way: a counting proxy each, `splitPrefixes` left
 * to its default (over plain HTTP, the prefix's one recursive query) or
 * `{ http1: true }`; the recursive queries open at the end go to the log.
 */
export const throughProxy = (agent: ConsulAgent, log: (line: string) => void): SplitWay => ({
  over: 'over plain HTTP',
  names: ['one query', 'splitPrefixes: { http1: true }'],
  async open({ size, mode, prefix }, split) {
    const proxy = await startProxy(agent);
    return {
      via: { host: proxy.host, port: proxy.port, http1Split: split },
      ...viaProxy(proxy, prefix, true),
      measured: (m) =>
        log(
          `many-keys: ${size} keys over plain HTTP, ${mode}, ${split ? 'split' : 'one query'}: ` +
            `${m.queryKeys.length} recursive queries open, ${m.kvInFlight} KV reads in flight, ` +
            `${m.connectionsOpen} connections open, ${m.connectionsAccepted} accepted`,
        ),
      close: () => proxy.close(),
    };
  },
});
