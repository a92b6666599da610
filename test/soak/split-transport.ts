/**
 * The transports of the split-prefix soak (split-soak.test.ts): what the SDK
 * talks through, what the proxies record, and the checks that depend on the
 * transport. The writers, subscribers and every other check are the same in
 * both modes.
 *
 * - `http2` (default): a TLS agent; SDK → test/support/tcp-proxy.ts (counts TCP
 *   connections) → test/support/h2-proxy.ts (records each stream's path, counts
 *   open streams) → agent. One connection, a bounded number of streams.
 * - `http1` (`SOAK_SPLIT_HTTP1=1`): a plain-HTTP agent; SDK →
 *   test/support/proxy.ts (records each request, counts connections and
 *   requests in flight) → agent, with `splitPrefixes.http1`: a connection per
 *   sub-prefix query, a bounded number of KV reads in flight and of connections.
 */
import { expect } from 'vitest';
import type Consul from 'consul';
import type { LeaderDiscoveryOptions } from '@consul-leader/discovery';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { consulClient } from '../support/contender.js';
import { type H2Proxy, startH2Proxy } from '../support/h2-proxy.js';
import { type ConsulProxy, startProxy } from '../support/proxy.js';
import { type TcpProxy, startTcpProxy } from '../support/tcp-proxy.js';
import {
  HTTPS_PORT,
  type TlsAgent,
  type TlsMaterial,
  createTlsMaterial,
  startTlsAgent,
} from '../support/tls.js';
import { until } from './harness.js';

export type SplitMode = 'http2' | 'http1';

interface Split {
  readonly minKeys: number;
  readonly maxQueries: number;
}

/** What a list of request paths is made of, such as `16 leaf reads, 1 key list, 4 session reads`. */
export type DescribeReads = (paths: readonly string[]) => string;

/** What the run's requests were, as the test file counts them from their paths. */
export interface RunReads {
  /** Whole reads without an index: the first plan, then one per re-plan. */
  readonly plansStarted: number;
  /** Leaf and key list reads without `?index`. */
  readonly unblocked: number;
}

export interface SplitTransport {
  readonly mode: SplitMode;
  /** For the report: the transport and the proxies in between. */
  readonly description: string;
  /** What one request is called in the report: `streams` (HTTP/2) or `requests` (HTTP/1.1). */
  readonly unit: string;
  /** The writers' client: straight to the agent. */
  readonly writer: Consul;
  /** `createLeaderDiscovery()`'s options: the agent through the proxies, and the split. */
  readonly options: LeaderDiscoveryOptions;
  /** Paths (with their query) of the SDK's requests, in the order they arrived. */
  paths(): readonly string[];
  /** How many requests arrived so far (cheaper than `paths().length`). */
  requestCount(): number;
  /** The report's part on requests open at once and connections. */
  report(reads: RunReads): string;
  /** After the writes and the convergence: the bounds on connections and requests at once. */
  checkRun(reads: RunReads): void;
  /** Right before close(): the connections and requests the SDK still holds. */
  checkBeforeClose(): void;
  /** After close(): every request and connection ends (waits up to 10 s). */
  checkClosed(): Promise<void>;
  /** After close() and a write to the prefix: no request and no connection since `requestsAtClose`. */
  checkNothingAfterClose(requestsAtClose: number): void;
  /** Drops what the proxies recorded and closes the test's own sockets (proxies, the writers' client). */
  releaseOwn(): Promise<void>;
  /** Stops everything (afterAll). */
  destroy(): Promise<void>;
}

/** `release` the first time it is called; nothing after (releaseOwn() then destroy()). */
function once(release: () => Promise<void>): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await release();
  };
}

/**
 * HTTP/2 streams open at once beyond the leaves' queries: the key list's query, the session
 * reads joining one answer (at most 4 `/v1/session/info`, or one `/v1/session/list`), the
 * prefix's whole read when it is planned anew, and 2 for streams that have answered but whose
 * end the proxy has not handled yet when the next read arrives.
 */
const STREAM_SLACK = 8;

export async function startHttp2Transport(split: Split, describe: DescribeReads): Promise<SplitTransport> {
  const material: TlsMaterial = createTlsMaterial();
  const agent: TlsAgent = await startTlsAgent(material);
  const h2: H2Proxy = await startH2Proxy(material, agent.host, HTTPS_PORT);
  const tcp: TcpProxy = await startTcpProxy(agent.host, h2.port);
  /** Most HTTP/2 streams open at once at the proxy, seen as each stream arrived: their paths. */
  let streamPeak: readonly string[] = [];
  h2.rule = () => {
    // The new stream is already listed when the rule runs.
    const open = h2.openStreams();
    if (open.length > streamPeak.length) streamPeak = open;
    return undefined;
  };
  const releaseOwn = once(async () => {
    h2.paths.length = 0;
    h2.rule = undefined;
    await tcp.close();
    await h2.close();
    agent.writer.destroy();
  });
  return {
    mode: 'http2',
    description: 'HTTPS with http2: SDK → tcp-proxy → h2-proxy → agent',
    unit: 'streams',
    writer: agent.writer,
    options: {
      consul: { host: agent.host, port: tcp.port, secure: true, ca: material.caPem },
      http2: true,
      splitPrefixes: split,
    },
    paths: () => h2.paths,
    requestCount: () => h2.paths.length,
    report: () =>
      `at most ${streamPeak.length} open at once (${describe(streamPeak)}; limit ${split.maxQueries} + ${STREAM_SLACK}); TCP connections ${tcp.accepted()}`,
    checkRun: () => {
      // One TCP connection to Consul for every query, all along.
      expect(tcp.accepted(), 'TCP connections the SDK opened').toBe(1);
      expect(tcp.open()).toBe(1);
      // Streams at once: the leaves, the key list, the session reads of one answer, a whole read.
      expect(
        streamPeak.length,
        `HTTP/2 streams open at once: ${describe(streamPeak)}: ${streamPeak.join(' ')}`,
      ).toBeLessThanOrEqual(split.maxQueries + STREAM_SLACK);
    },
    checkBeforeClose: () => {
      expect(tcp.open()).toBe(1);
      expect(h2.openStreams().length).toBeGreaterThan(0);
    },
    checkClosed: async () => {
      const streamsClosed = await until(() => h2.openStreams().length === 0 && tcp.open() === 0, 10_000);
      expect(
        streamsClosed,
        `after close(): HTTP/2 streams still open ${JSON.stringify(h2.openStreams())}, TCP connections still open ${tcp.open()}`,
      ).toBe(true);
    },
    checkNothingAfterClose: (requestsAtClose) => {
      expect(h2.paths.length, 'streams opened after close()').toBe(requestsAtClose);
      expect(tcp.accepted(), 'TCP connections after close()').toBe(1);
    },
    releaseOwn,
    destroy: async () => {
      await releaseOwn();
      await agent.destroy();
      material.remove();
    },
  };
}

/**
 * KV reads in flight at once beyond the leaves' queries: the key list's query, the prefix's
 * whole read when it is planned anew, and 2 for reads that have answered but whose end the
 * proxy has not handled yet when the next read arrives.
 */
const KV_READ_SLACK = 4;
/**
 * Connections open at once beyond one per leaf query and the key list's: the session reads
 * joining one answer (at most 4 `/v1/session/info`, or one `/v1/session/list`), a whole read,
 * and the keep-alive pool's idle ones. One connection per request instead (no keep-alive)
 * would open one per read (thousands), and break the bound on connections accepted.
 */
const CONNECTION_SLACK = 8;
/**
 * Connections accepted over the whole run, per plan: a plan's queries end (and their
 * connections with them) when the prefix is planned anew, so each plan opens up to one per
 * query again, and the session reads a few more. One connection per request would open
 * thousands.
 */
const acceptedLimit = (split: Split, plans: number): number =>
  (split.maxQueries + 1 + CONNECTION_SLACK) * (plans + 1);

export async function startHttp1Transport(split: Split, describe: DescribeReads): Promise<SplitTransport> {
  const agent: ConsulAgent = await startConsulAgent();
  const proxy: ConsulProxy = await startProxy(agent);
  const writer = consulClient(agent.address);
  const KV = '/v1/kv/';
  /** Most KV reads in flight at once at the proxy, seen as each request arrived: their paths. */
  let readPeak: readonly string[] = [];
  let readPeakCount = 0;
  /** Most connections open at once, seen as each request arrived. */
  let connectionPeak = 0;
  const pathOf = (r: { readonly path: string; readonly query: URLSearchParams }): string => {
    const query = r.query.toString();
    return query === '' ? r.path : `${r.path}?${query}`;
  };
  proxy.rule = (req) => {
    connectionPeak = Math.max(connectionPeak, proxy.openConnections());
    if (req.method === 'GET' && req.path.startsWith(KV)) {
      // The request is already counted as pending when the rule runs.
      const now = proxy.inFlight(KV);
      if (now > readPeakCount) {
        readPeakCount = now;
        // Rarely (only at a new peak): which reads they are, the latest without an answer yet
        // (a read aborted before its answer, at a re-plan, has no status either: an older one).
        readPeak = proxy.requests
          .filter((r) => r.status === undefined && r.method === 'GET' && r.path.startsWith(KV))
          .slice(-now)
          .map(pathOf);
      }
    }
    return undefined;
  };
  let acceptedAtClose: number | undefined;
  const releaseOwn = once(async () => {
    proxy.requests.length = 0;
    proxy.rule = undefined;
    await proxy.close();
    writer.destroy();
  });
  const readLimit = split.maxQueries + KV_READ_SLACK;

  const connectionLimit = split.maxQueries + 1 + CONNECTION_SLACK;
  return {
    mode: 'http1',
    description: 'plain HTTP/1.1 with splitPrefixes.http1: SDK → proxy → agent',
    unit: 'requests',
    writer,
    options: {
      consul: { host: proxy.host, port: proxy.port },
      splitPrefixes: { ...split, http1: true },
    },
    paths: () => proxy.requests.map(pathOf),
    requestCount: () => proxy.requests.length,
    report: (reads) =>
      `at most ${readPeakCount} KV reads in flight at once (${describe(readPeak)}; limit ${split.maxQueries} + ${KV_READ_SLACK}); connections: at most ${connectionPeak} open at once (limit ${split.maxQueries} + 1 + ${CONNECTION_SLACK}), ${proxy.connectionsAccepted()} accepted (limit ${acceptedLimit(split, reads.plansStarted)} for ${reads.plansStarted} plans), ${proxy.openConnections()} open now`,
    checkRun: (reads) => {
      // Every sub-prefix and key list query blocks, from its first read on (else each
      // would come back at once, and read again, on its connection).
      expect(reads.unblocked, 'sub-prefix and key list reads without ?index').toBe(0);
      // The split held: more than one blocking query, each on a connection of its own.
      expect(proxy.inFlight(KV), 'KV reads in flight after the quiet period').toBeGreaterThan(1);
      expect(proxy.openConnections()).toBeGreaterThanOrEqual(proxy.inFlight('/'));
      // Reads at once: the leaves, the key list, a whole read.
      expect(
        readPeakCount,
        `KV reads in flight at once: ${describe(readPeak)}: ${readPeak.join(' ')}`,
      ).toBeLessThanOrEqual(readLimit);
      // Connections at once: one per query, the session reads of one answer, a few idle ones.
      expect(connectionPeak, 'connections open at once').toBeLessThanOrEqual(connectionLimit);
      expect(proxy.openConnections(), 'connections open now').toBeLessThanOrEqual(connectionLimit);
      // Reused: not one connection per request.
      expect(
        proxy.connectionsAccepted(),
        `connections accepted, for ${proxy.requests.length} requests`,
      ).toBeLessThanOrEqual(acceptedLimit(split, reads.plansStarted));
    },
    checkBeforeClose: () => {
      expect(proxy.openConnections()).toBeGreaterThan(1);
      expect(proxy.inFlight(KV)).toBeGreaterThan(1);
      acceptedAtClose = proxy.connectionsAccepted();
    },
    checkClosed: async () => {
      const closed = await until(() => proxy.inFlight('/') === 0 && proxy.openConnections() === 0, 10_000);
      expect(
        closed,
        `after close(): requests still in flight ${proxy.inFlight('/')}, connections still open ${proxy.openConnections()}`,
      ).toBe(true);
    },
    checkNothingAfterClose: (requestsAtClose) => {
      expect(proxy.requests.length, 'requests made after close()').toBe(requestsAtClose);
      expect(proxy.connectionsAccepted(), 'connections after close()').toBe(acceptedAtClose);
    },
    releaseOwn,
    destroy: async () => {
      await releaseOwn();
      await agent.destroy();
    },
  };
}
