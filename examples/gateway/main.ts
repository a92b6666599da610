/**
 * A gateway process: forwards every HTTP request to the leader of a Consul lock key.
 *
 *   tsx examples/gateway/main.ts --addr 127.0.0.1:8500 --key service/demo/leader --listen 8080
 *
 * The leader's descriptor is what examples/contender writes: `{"host","port",...}`.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { createLeaderGateway } from './gateway.js';

const USAGE = `Usage: tsx examples/gateway/main.ts [options]

  --addr <addr>      Consul HTTP API: host:port or http(s)://host:port
                     (default: CONSUL_HTTP_ADDR, else 127.0.0.1:8500)
  --key <key>        the leader key (default: service/demo/leader)
  --listen <port>    port to listen on (default: 8080)
  --host <host>      address to listen on (default: 127.0.0.1)
  --retry-after <s>  Retry-After of 503/502 answers, in seconds (default: 1)
  -h, --help         print this help
`;

const { values: args } = parseArgs({
  options: {
    addr: { type: 'string' },
    key: { type: 'string', default: 'service/demo/leader' },
    listen: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    'retry-after': { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const listenPort = Number(args.listen);
const retryAfterSeconds = Number(args['retry-after']);
if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) {
  process.stderr.write(`--listen: not a port: ${args.listen}\n\n${USAGE}`);
  process.exit(2);
}
if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 0) {
  process.stderr.write(`--retry-after: not a number of seconds: ${args['retry-after']}\n\n${USAGE}`);
  process.exit(2);
}

/** What examples/contender writes as the key's value (other fields are ignored). */
const Descriptor = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  name: z.string().optional(),
});

const log = (line: string): void => console.log(`${new Date().toISOString()} [gateway] ${line}`);

// --addr replaces CONSUL_HTTP_ADDR only: the other CONSUL_* variables (token, TLS) still apply.
// watchSessions: contenders create their session before campaigning, so a new leader is
// routed to from the KV answer alone, one round trip sooner.
let discovery: LeaderDiscovery;
try {
  discovery = createLeaderDiscovery({
    watchSessions: true,
    ...(args.addr === undefined ? {} : { env: { ...process.env, CONSUL_HTTP_ADDR: args.addr } }),
  });
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  process.exit(2);
}
const gateway = createLeaderGateway({
  discovery,
  key: args.key,
  schema: Descriptor,
  target: (leader) => ({ host: leader.node.host, port: leader.node.port }),
  retryAfterSeconds,
});

gateway.handle.changes.subscribe((leader) =>
  log(
    leader
      ? `forwarding to ${leader.node.name ?? 'the leader'} at ${leader.node.host}:${leader.node.port} (session ${leader.session.id.slice(0, 8)})`
      : `no leader of ${args.key}: answering 503`,
  ),
);

gateway.server.listen(listenPort, args.host, () => {
  const address = gateway.server.address();
  const port = typeof address === 'object' && address ? address.port : listenPort;
  log(`listening on http://${args.host}:${port}, following ${args.key}`);
});

let stopping = false;
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  setTimeout(() => process.exit(1), 5_000).unref();
  void gateway.close().then(() => {
    discovery.close();
    process.exit(0);
  });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
