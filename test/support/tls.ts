/**
 * TLS material made with Consul's own commands (`consul tls ca create`,
 * `consul tls cert create`), and dev agents that serve the HTTP API over HTTPS
 * only, optionally requiring client certificates (`verify_incoming_https`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Consul from 'consul';
import {
  type ConsulAgent,
  consulBinary,
  freeLoopbackHost,
  startConsulAgent,
} from '../../scripts/consul-agent.js';
import { acquire, createSession } from './contender.js';

export interface CertFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

export interface TlsMaterial {
  readonly dir: string;
  /** The CA the agents' certificates are signed by. */
  readonly caPath: string;
  readonly caPem: string;
  /** A client certificate (`consul tls cert create -client`) signed by that CA. */
  readonly client: CertFiles;
  /** A second, unrelated CA: it signed nothing the agents present. */
  readonly otherCaPath: string;
  readonly otherCaPem: string;
  /** A server certificate for `server.dc1.consul`, localhost, 127.0.0.1 and `ip`. */
  serverCert(ip: string): CertFiles;
  /** Removes every file. */
  remove(): void;
}

const CA_FILE = 'consul-agent-ca.pem';
const CA_KEY_FILE = 'consul-agent-ca-key.pem';

function consulTls(cwd: string, args: readonly string[]): void {
  execFileSync(consulBinary(), ['tls', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

function certFiles(dir: string, base: string): CertFiles {
  const certPath = join(dir, `${base}.pem`);
  const keyPath = join(dir, `${base}-key.pem`);
  return { certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

/** Makes a CA, a client certificate and an unrelated CA in a new temp dir. */
export function createTlsMaterial(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'consul-leader-tls-'));
  consulTls(dir, ['ca', 'create']);
  const caPath = join(dir, CA_FILE);
  const signedBy = ['-ca', caPath, '-key', join(dir, CA_KEY_FILE)];

  const clientDir = join(dir, 'client');
  mkdirSync(clientDir);
  consulTls(clientDir, ['cert', 'create', '-client', '-dc', 'dc1', ...signedBy]);

  const otherDir = join(dir, 'other-ca');
  mkdirSync(otherDir);
  consulTls(otherDir, ['ca', 'create']);
  const otherCaPath = join(otherDir, CA_FILE);

  let servers = 0;
  return {
    dir,
    caPath,
    caPem: readFileSync(caPath, 'utf8'),
    client: certFiles(clientDir, 'dc1-client-consul-0'),
    otherCaPath,
    otherCaPem: readFileSync(otherCaPath, 'utf8'),
    serverCert(ip) {
      const serverDir = join(dir, `server-${(servers += 1)}`);
      mkdirSync(serverDir);
      consulTls(serverDir, [
        'cert',
        'create',
        '-server',
        '-dc',
        'dc1',
        '-additional-ipaddress',
        ip,
        ...signedBy,
      ]);
      return certFiles(serverDir, 'dc1-server-consul-0');
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TlsAgent {
  readonly agent: ConsulAgent;
  readonly host: string;
  readonly port: number;
  /** A node-consul client that trusts the CA and presents the client certificate: the write side. */
  readonly writer: Consul;
  /** Creates a session and acquires `key` with `descriptor` (JSON) as the value; resolves the session id. */
  campaign(key: string, descriptor: unknown, name?: string): Promise<string>;
  destroy(): Promise<void>;
}

export const HTTPS_PORT = 8501;

/** The `consul` package passes `ca`, `cert`, `key` to https.request; its types do not list them. */
export function tlsConsulClient(options: {
  host: string;
  port: number;
  ca: string;
  cert?: string;
  key?: string;
}): Consul {
  const { host, port, ca, cert, key } = options;
  return new Consul({
    host,
    port,
    secure: true,
    ca: [ca],
    ...(cert && key ? { cert, key } : {}),
  } as ConstructorParameters<typeof Consul>[0]);
}

/** Calls `attempt` until it resolves, every 150 ms, for at most `timeoutMs`. */
export async function retry<T>(what: string, attempt: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: not done in ${timeoutMs} ms`, { cause: error });
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/**
 * A dev agent serving HTTPS only on 127.0.0.X:8501 with a server certificate for
 * that address; with `mutual`, clients must present a certificate signed by the CA
 * (`verify_incoming_https`; plain `verify_incoming` would also fail the dev agent's
 * own health check). Resolves once the agent has a Raft leader and accepts sessions.
 */
export async function startTlsAgent(
  material: TlsMaterial,
  options: { mutual?: boolean; hcl?: string } = {},
): Promise<TlsAgent> {
  const host = await freeLoopbackHost();
  const server = material.serverCert(host);
  const hcl = [
    `ca_file = ${JSON.stringify(material.caPath)}`,
    `cert_file = ${JSON.stringify(server.certPath)}`,
    `key_file = ${JSON.stringify(server.keyPath)}`,
    ...(options.mutual ? ['verify_incoming_https = true'] : []),
    options.hcl ?? '',
    '',
  ].join('\n');
  const agent = await startConsulAgent({ host, httpsPort: HTTPS_PORT, hcl });
  const writer = tlsConsulClient({
    host,
    port: HTTPS_PORT,
    ca: material.caPem,
    cert: material.client.cert,
    key: material.client.key,
  });
  const destroy = async (): Promise<void> => {
    writer.destroy();
    await agent.destroy();
  };
  try {
    await retry('a Raft leader over HTTPS', async () => {
      if (!(await writer.status.leader())) throw new Error('no leader yet');
    });
  } catch (error) {
    await destroy();
    throw new Error(`${(error as Error).message}\n${agent.logs().slice(-3000)}`, { cause: error });
  }
  return {
    agent,
    host,
    port: HTTPS_PORT,
    writer,
    // A session needs the agent's node in the catalog, which may lag the leader a little.
    campaign: (key, descriptor, name = 'tls-contender') =>
      retry('create a session and acquire', async () => {
        const session = await createSession(writer, { name });
        if (!(await acquire(writer, key, session, JSON.stringify(descriptor)))) {
          throw new Error(`${key} was not acquired`);
        }
        return session;
      }),
    destroy,
  };
}
