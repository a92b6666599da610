/**
 * The dashboard as a process: a live table of every leader under a Consul KV prefix.
 *
 *   tsx examples/dashboard/server.ts --addr 127.0.0.1:8500 --prefix service/ --listen 8080
 */
import { parseArgs } from 'node:util';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';
import { createDashboard } from './dashboard.js';

const USAGE = `Usage: tsx examples/dashboard/server.ts [options]

  --addr <addr>      Consul HTTP API: host:port or http(s)://host:port
                     (default: CONSUL_HTTP_ADDR, else 127.0.0.1:8500)
  --prefix <prefix>  the KV prefix of the leader keys (default: service/)
  --listen <port>    port to listen on (default: 8080)
  --host <host>      address to listen on (default: 127.0.0.1)
  -h, --help         print this help
`;

const { values: args } = parseArgs({
  options: {
    addr: { type: 'string' },
    prefix: { type: 'string', default: 'service/' },
    listen: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const listenPort = Number(args.listen);
if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) {
  process.stderr.write(`--listen: not a port: ${args.listen}\n\n${USAGE}`);
  process.exit(2);
}

const log = (line: string): void => console.log(`${new Date().toISOString()} [dashboard] ${line}`);

// --addr replaces CONSUL_HTTP_ADDR only: the other CONSUL_* variables (token, TLS) still apply.
let discovery: LeaderDiscovery;
try {
  discovery = createLeaderDiscovery(
    args.addr === undefined ? {} : { env: { ...process.env, CONSUL_HTTP_ADDR: args.addr } },
  );
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  process.exit(2);
}
const dashboard = createDashboard({ discovery, prefix: args.prefix });

dashboard.server.listen(listenPort, args.host, () => {
  const address = dashboard.server.address();
  const port = typeof address === 'object' && address ? address.port : listenPort;
  log(`http://${args.host}:${port}/ shows the leaders under ${args.prefix}`);
});

let stopping = false;
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  setTimeout(() => process.exit(1), 5_000).unref();
  void dashboard.close().then(() => {
    discovery.close();
    process.exit(0);
  });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
