/**
 * Real Consul agents for tests, the demo and benchmarks: finds (or fetches) a
 * `consul` binary with scripts/ensure-consul.sh, starts agents on their own
 * loopback address (127.0.0.X) so default ports never collide, and stops them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
let binary: string | undefined;

/** Path of a `consul` binary: CONSUL_BIN, PATH, or Debian's package fetched into .cache/. */
export function consulBinary(): string {
  binary ??= execFileSync('bash', [join(ROOT, 'scripts', 'ensure-consul.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  return binary;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

const usedHosts = new Set<string>();

/** A loopback address whose Consul ports are free, not handed out before by this process. */
export async function freeLoopbackHost(): Promise<string> {
  for (let tries = 0; tries < 200; tries += 1) {
    const host = `127.0.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
    if (usedHosts.has(host)) continue;
    const ports = [8500, 8501, 8300, 8301, 8302, 8502, 8600];
    const free = await Promise.all(ports.map((p) => portFree(host, p)));
    if (free.every(Boolean)) {
      usedHosts.add(host);
      return host;
    }
  }
  throw new Error('no free loopback address for a Consul agent');
}

export interface AgentOptions {
  /** Loopback address to bind; a free one when absent. */
  readonly host?: string;
  /** Extra HCL configuration (ACLs, TLS, ports). */
  readonly hcl?: string;
  /** Extra command-line arguments. Without `-dev` in them, a data dir is made. */
  readonly args?: readonly string[];
  /** Start a `-dev` agent (default true). */
  readonly dev?: boolean;
  /** Wait until the agent has a Raft leader (default true). */
  readonly waitForLeader?: boolean;
  /** HTTP port (default 8500). */
  readonly httpPort?: number;
  /** HTTPS instead of HTTP is served on this port (then `httpPort` is not used). */
  readonly httpsPort?: number;
}

export interface ConsulAgent {
  readonly host: string;
  readonly port: number;
  /** `host:port` of the HTTP API. */
  readonly address: string;
  readonly process: () => ChildProcess;
  /** Logs of the current process. */
  readonly logs: () => string;
  /** Stops the agent (SIGINT, then SIGKILL). */
  stop(): Promise<void>;
  /** Kills the agent at once (SIGKILL): no leave, like a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same address. A -dev agent then starts from an empty state and a small index. */
  start(): Promise<void>;
  /** Stops the agent and removes its files. */
  destroy(): Promise<void>;
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logs: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Consul agent: ${what} not reached in ${timeoutMs} ms\n${logs().slice(-3000)}`);
}

export async function startConsulAgent(options: AgentOptions = {}): Promise<ConsulAgent> {
  const bin = consulBinary();
  const host = options.host ?? (await freeLoopbackHost());
  const dev = options.dev ?? true;
  const port = options.httpsPort ?? options.httpPort ?? 8500;
  const dir = mkdtempSync(join(tmpdir(), 'consul-leader-agent-'));
  const args = ['agent', '-bind', host, '-client', host, '-log-level', 'warn', '-disable-host-node-id'];
  if (dev) args.push('-dev');
  else args.push('-data-dir', join(dir, 'data'));
  let hcl = options.hcl ?? '';
  if (options.httpPort) hcl += `\nports { http = ${options.httpPort} }\n`;
  if (options.httpsPort) hcl += `\nports { http = -1\n https = ${options.httpsPort} }\n`;
  if (hcl.trim()) {
    writeFileSync(join(dir, 'extra.hcl'), hcl);
    args.push('-config-file', join(dir, 'extra.hcl'));
  }
  args.push(...(options.args ?? []));

  let child: ChildProcess | undefined;
  let output = '';
  const logs = (): string => output;

  const start = async (): Promise<void> => {
    output = '';
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    const scheme = options.httpsPort ? 'https' : 'http';
    if (scheme === 'https') {
      await waitUntil(
        'HTTPS port open',
        async () => {
          if (exited) throw new Error(`Consul agent exited at start:\n${output.slice(-3000)}`);
          return !(await portFree(host, port));
        },
        30_000,
        logs,
      );
      return;
    }
    const url = `http://${host}:${port}/v1/status/leader`;
    await waitUntil(
      options.waitForLeader === false ? 'HTTP API' : 'a Raft leader',
      async () => {
        if (exited) throw new Error(`Consul agent exited at start:\n${output.slice(-3000)}`);
        const res = await fetch(url).catch(() => undefined);
        if (!res) return false;
        if (options.waitForLeader === false) return res.status < 500;
        const body = (await res.json().catch(() => undefined)) as unknown;
        return typeof body === 'string' && body.length > 0;
      },
      30_000,
      logs,
    );
    if (exited) throw new Error(`Consul agent exited at start:\n${output}`);
  };

  const waitExit = (proc: ChildProcess, signal: NodeJS.Signals): Promise<void> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill(signal);
    });

  await start();
  return {
    host,
    port,
    address: `${host}:${port}`,
    process: () => {
      if (!child) throw new Error('not started');
      return child;
    },
    logs,
    start,
    async stop() {
      if (child) await waitExit(child, 'SIGINT');
    },
    async kill() {
      if (child) await waitExit(child, 'SIGKILL');
    },
    async destroy() {
      if (child) await waitExit(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
