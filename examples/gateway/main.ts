/**
 * A gateway process: forwards every HTTP request (and WebSocket upgrade) to the leader of a
 * Consul lock key, through `createLeaderProxy` of `@consul-leader/discovery/http`.
 *
 *   tsx examples/gateway/main.ts --addr 127.0.0.1:8500 --key service/demo/leader --listen 8080 \
 *     --health-port 8081
 *
 * The leader's descriptor is what examples/contender writes: `{"host","port",...}`. The
 * health port serves the SDK's OpenTelemetry metrics too, at /metrics in Prometheus' text
 * format (`PrometheusExporter`).
 */
import { parseArgs } from 'node:util';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { type LeaderGateway, createLeaderGateway } from './gateway.js';

const USAGE = `Usage: tsx examples/gateway/main.ts [options]

  --addr <addr>             Consul HTTP API: host:port or http(s)://host:port
                            (default: CONSUL_HTTP_ADDR, else 127.0.0.1:8500)
  --key <key>               the leader key (default: service/demo/leader)
  --listen <port>           port to listen on (default: 8080)
  --host <host>             address to listen on, the health port's too (default: 127.0.0.1)
  --wait-for-leader <dur>   how long a request waits for a leader when there is none,
                            as 2s, 500ms or ms; 0: 503 at once (default: 2s)
  --retry-after <s>         Retry-After of 503/502 answers, in seconds (default: 1)
  --health-port <port>      serve the leader's health (GET /, any path) and the
                            metrics (GET /metrics, Prometheus' text format) on this
                            port (default: none)
  --preserve-host           pass the client's Host header on (default: the leader's host:port)
  -h, --help                print this help
`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The flags; an unknown one, or one without its value, prints the usage. */
function parse() {
  try {
    return parseArgs({
      options: {
        addr: { type: 'string' },
        key: { type: 'string', default: 'service/demo/leader' },
        listen: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        'wait-for-leader': { type: 'string', default: '2s' },
        'retry-after': { type: 'string', default: '1' },
        'health-port': { type: 'string' },
        'preserve-host': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (error) {
    return usageError(messageOf(error));
  }
}
const args = parse();

if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function port(flag: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < 0 || value > 65535) {
    usageError(`--${flag}: not a port: ${text}`);
  }
  return value;
}

const listenPort = port('listen', args.listen);
const healthPort = args['health-port'] === undefined ? undefined : port('health-port', args['health-port']);
const retryAfterSeconds = Number(args['retry-after']);
if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 0) {
  usageError(`--retry-after: not a number of seconds: ${args['retry-after']}`);
}
// A bare number is ms; the SDK checks the rest ('2s', '500ms', '1m30s').
const waitForLeader = /^\d+$/.test(args['wait-for-leader'])
  ? Number(args['wait-for-leader'])
  : args['wait-for-leader'];

/** What examples/contender writes as the key's value (other fields are ignored). */
const Descriptor = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  name: z.string().optional(),
});

const log = (line: string): void => console.log(`${new Date().toISOString()} [gateway] ${line}`);

// The SDK's metrics, read at each scrape of /metrics: the exporter is a pull reader with no
// server of its own (the health server answers its path).
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });

// --addr replaces CONSUL_HTTP_ADDR only: the other CONSUL_* variables (token, TLS) still apply.
// watchSessions: contenders create their session before campaigning, so a new leader is
// routed to from the KV answer alone, one round trip sooner.
let discovery: LeaderDiscovery;
let gateway: LeaderGateway<z.output<typeof Descriptor>>;
try {
  discovery = createLeaderDiscovery({
    watchSessions: true,
    meterProvider,
    ...(args.addr === undefined ? {} : { env: { ...process.env, CONSUL_HTTP_ADDR: args.addr } }),
  });
  gateway = createLeaderGateway({
    discovery,
    key: args.key,
    schema: Descriptor,
    // An IPv6 address is bracketed in a URL.
    origin: ({ node }) => `http://${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`,
    waitForLeader,
    retryAfterSeconds,
    preserveHost: args['preserve-host'],
    metrics: (req, res) => exporter.getMetricsRequestHandler(req, res),
  });
} catch (error) {
  usageError(messageOf(error)); // an invalid --addr or --wait-for-leader
}

gateway.handle.changes.subscribe((leader) =>
  log(
    leader
      ? `forwarding to ${leader.node.name ?? 'the leader'} at ${leader.node.host}:${leader.node.port} (session ${leader.session.id.slice(0, 8)})`
      : `no leader of ${args.key}: requests wait up to ${args['wait-for-leader']}, then 503`,
  ),
);

const listening = (name: string, server: typeof gateway.server, wanted: number): void => {
  server.on('error', (error) => {
    log(`${name}: ${messageOf(error)}`);
    process.exit(1);
  });
  server.listen(wanted, args.host, () => {
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : wanted;
    log(
      `${name} listening on http://${args.host}:${bound}${name === 'proxy' ? `, following ${args.key}` : ''}`,
    );
  });
};
listening('proxy', gateway.server, listenPort);
if (healthPort !== undefined) listening('health', gateway.health, healthPort);

let stopping = false;
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  setTimeout(() => process.exit(1), 7_000).unref(); // the close's grace is 5 s
  void gateway
    .close()
    .then(() => {
      discovery.close();
      return meterProvider.shutdown().catch((error) => log(`metrics: ${messageOf(error)}`));
    })
    .then(() => {
      log('stopped');
      process.exit(0);
    });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
