/**
 * Real backend processes for routing tests: each is test/support/routing-backend-main.ts in a
 * child process (`node --import tsx`, so a signal reaches the backend itself), campaigning for
 * one Consul key and serving only while it holds it. The parent steps them down, reads their
 * stats and kills them over the IPC channel; `followHolders` is the test's own record of who
 * holds the key.
 *
 * Clocks: every `at` here is this process's `performance.now()`; the children report epoch
 * milliseconds and are converted on arrival (`at - performance.timeOrigin`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const MAIN = join(HERE, 'routing-backend-main.ts');

// ---- the IPC protocol (also imported, as types only, by routing-backend-main.ts)

/** One request as a backend saw it: the stamps and whether it led when the request arrived. */
export interface WireRequest {
  readonly method: string;
  readonly url: string;
  readonly sessionId: string;
  readonly leader: boolean;
  /** A WebSocket upgrade (answered 101, or refused with a plain response). */
  readonly upgrade: boolean;
  readonly at: number;
}

export type BackendCommand =
  | { readonly type: 'stepDown'; readonly rejoinAfterMs?: number; readonly id?: number }
  | { readonly type: 'stats'; readonly id?: number }
  | { readonly type: 'close'; readonly id?: number };

export type BackendMessage = (
  | { readonly type: 'ready'; readonly port: number; readonly name: string }
  | { readonly type: 'leader'; readonly sessionId: string; readonly at: number }
  /** Leadership ended without a step-down: the key seen released or held by another session, or our session gone. */
  | { readonly type: 'lost'; readonly sessionId: string; readonly why: string; readonly at: number }
  | {
      readonly type: 'steppedDown';
      /** The session released and destroyed (null when it had none). */
      readonly sessionId: string | null;
      /** Whether it held the key and released it. */
      readonly released: boolean;
      readonly at: number;
    }
  | { readonly type: 'holdArrived'; readonly url: string; readonly at: number }
  | { readonly type: 'holdClosed'; readonly url: string; readonly at: number }
  | {
      readonly type: 'stats';
      readonly name: string;
      readonly port: number;
      readonly leader: boolean;
      readonly sessionId: string | null;
      /** Sockets open on the server, upgraded ones included. */
      readonly openConnections: number;
      readonly openWebSockets: number;
      readonly requests: readonly WireRequest[];
      readonly holdArrived: number;
      readonly holdClosed: number;
      readonly wsMessages: number;
    }
  | { readonly type: 'closed' }
) & { readonly id?: number };

export type BackendEvent = Exclude<BackendMessage, { type: 'stats' }>;
export type BackendStats = Omit<Extract<BackendMessage, { type: 'stats' }>, 'type' | 'id'>;

// ---- the parent side

export interface Backend {
  readonly name: string;
  readonly port: number;
  /** `http://127.0.0.1:port` */
  readonly origin: string;
  readonly pid: number;
  /** Everything the backend reported but stats, in order, `at` on this process's clock. */
  readonly events: readonly BackendEvent[];
  /** Marks itself not-leader at once (421 from then on), releases the key, destroys its session; campaigns again after `rejoinAfterMs` (default 1000). Resolves with the released session id. */
  stepDown(rejoinAfterMs?: number): Promise<string>;
  stats(): Promise<BackendStats>;
  /** Resolves with the first event, from index `from` on, matching; rejects after `timeoutMs`. */
  waitFor(
    predicate: (event: BackendEvent) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<BackendEvent>;
  /** SIGKILL: a crash, its session left to expire in Consul. */
  kill(): void;
  /** Resolves once the process has exited (and been reaped). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Releases, destroys its session and exits; SIGKILL after 5 s. */
  close(): Promise<void>;
  /** The process's stdout and stderr. */
  logs(): string;
}

export interface Backends {
  readonly backends: Backend[];
  /** Waits until a backend reported leading with the session that holds the key in Consul. */
  leader(timeoutMs?: number): Promise<Backend>;
  close(): Promise<void>;
}

export interface BackendsOptions {
  /** `host:port` of a Consul agent's HTTP API. */
  readonly consulAddress: string;
  readonly key: string;
  /** Default 3. */
  readonly count?: number;
  /** Default '10s'. */
  readonly ttl?: string;
  /** Default '0s'. */
  readonly lockDelay?: string;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const toLocal = (epochMs: number): number => epochMs - performance.timeOrigin;
const kvUrl = (consulAddress: string, key: string): string =>
  `http://${consulAddress}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

/** The session holding `key` now (null when vacant or missing). */
export async function keyHolder(consulAddress: string, key: string): Promise<string | null> {
  const res = await fetch(kvUrl(consulAddress, key));
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) throw new Error(`GET ${key}: ${res.status} ${await res.text()}`);
  const entries = (await res.json()) as Array<{ Session?: string }>;
  return entries[0]?.Session ?? null;
}

interface Internal extends Backend {
  /** The session it last reported leading with, until it steps down, loses it or exits. */
  leading(): string | undefined;
}

async function startBackend(name: string, options: BackendsOptions): Promise<Internal> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      ...['--addr', options.consulAddress, '--key', options.key, '--name', name],
      ...['--ttl', options.ttl ?? '10s', '--lock-delay', options.lockDelay ?? '0s'],
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > 100_000) output = output.slice(-50_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const events: BackendEvent[] = [];
  const waiters = new Set<() => void>();
  const pending = new Map<number, { resolve: (m: BackendMessage) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let leading: string | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitedPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      leading = undefined;
      for (const { reject } of pending.values())
        reject(new Error(`${name} exited (${signal ?? code})\n${output}`));
      pending.clear();
      for (const waiter of [...waiters]) waiter();
      resolve(exit);
    });
  });
  // An IPC channel closed under a pending send raises 'error' on the child: never a crash.
  child.on('error', () => undefined);

  child.on('message', (raw: BackendMessage) => {
    const message = 'at' in raw ? { ...raw, at: toLocal(raw.at) } : raw;
    if (message.type === 'leader') leading = message.sessionId;
    if (message.type === 'lost' || message.type === 'steppedDown') leading = undefined;
    if (message.type !== 'stats') events.push(message);
    if (message.id !== undefined) {
      pending.get(message.id)?.resolve(message);
      pending.delete(message.id);
    }
    for (const waiter of [...waiters]) waiter();
  });

  const call = (command: BackendCommand): Promise<BackendMessage> =>
    new Promise((resolve, reject) => {
      if (exit || !child.connected) return reject(new Error(`${name} is not running\n${output}`));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ ...command, id }, (error) => {
        if (!error) return;
        pending.delete(id);
        reject(error);
      });
    });

  const waitFor: Backend['waitFor'] = (predicate, waitOptions = {}) => {
    const { from = 0, timeoutMs = 20_000 } = waitOptions;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.slice(from).find(predicate);
        if (found === undefined && !exit) return;
        waiters.delete(check);
        clearTimeout(timer);
        if (found !== undefined) resolve(found);
        else
          reject(
            new Error(`${name} exited before the event came; events: ${JSON.stringify(events)}\n${output}`),
          );
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `${name}: no matching event in ${timeoutMs} ms; events: ${JSON.stringify(events)}\n${output}`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  };

  let ready: Extract<BackendEvent, { type: 'ready' }>;
  try {
    ready = (await waitFor((e) => e.type === 'ready')) as typeof ready;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }

  const backend: Internal = {
    name,
    port: ready.port,
    origin: `http://127.0.0.1:${ready.port}`,
    pid: child.pid ?? 0,
    events,
    leading: () => leading,
    async stepDown(rejoinAfterMs = 1_000) {
      // Not leading from the moment the command is sent: the backend answers 421 from its receipt on.
      leading = undefined;
      const answer = await call({ type: 'stepDown', rejoinAfterMs });
      if (answer.type !== 'steppedDown' || answer.sessionId === null) {
        throw new Error(`${name}: nothing to step down from (${JSON.stringify(answer)})`);
      }
      return answer.sessionId;
    },
    async stats() {
      const answer = await call({ type: 'stats' });
      if (answer.type !== 'stats') throw new Error(`${name}: unexpected answer ${JSON.stringify(answer)}`);
      return {
        name: answer.name,
        port: answer.port,
        leader: answer.leader,
        sessionId: answer.sessionId,
        openConnections: answer.openConnections,
        openWebSockets: answer.openWebSockets,
        requests: answer.requests.map((r) => ({ ...r, at: toLocal(r.at) })),
        holdArrived: answer.holdArrived,
        holdClosed: answer.holdClosed,
        wsMessages: answer.wsMessages,
      };
    },
    waitFor,
    kill() {
      if (!exit) child.kill('SIGKILL');
    },
    exited: () => exitedPromise,
    async close() {
      if (exit) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      call({ type: 'close' }).catch(() => child.kill('SIGKILL'));
      await exitedPromise;
      clearTimeout(timer);
    },
    logs: () => output,
  };
  return backend;
}

export async function startBackends(options: BackendsOptions): Promise<Backends> {
  const count = options.count ?? 3;
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startBackend(`backend-${i + 1}`, options)),
  );
  const backends = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(backends.map((b) => b.close()));
    throw failed.reason;
  }
  return {
    backends,
    async leader(timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const holder = await keyHolder(options.consulAddress, options.key).catch(() => null);
        const found = holder === null ? undefined : backends.find((b) => b.leading() === holder);
        if (found) return found;
        if (performance.now() > deadline) {
          const reported = backends.map((b) => `${b.name}: ${b.leading() ?? '-'}`).join(', ');
          throw new Error(`no leader within ${timeoutMs} ms: key held by ${holder ?? 'nobody'}; ${reported}`);
        }
        await delay(20);
      }
    },
    async close() {
      await Promise.all(backends.map((b) => b.close()));
    },
  };
}

export interface HolderChange {
  /** The session holding the key from then on; null when vacant or missing. */
  readonly session: string | null;
  /** When this process read the answer that showed it (`performance.now()`). */
  readonly at: number;
}

export interface Holders {
  /** The first entry is the state at the first read; then one per change of the key's Session. */
  readonly changes: readonly HolderChange[];
  /** Resolves with the first change, from index `from` on, matching; rejects after `timeoutMs`. */
  waitFor(
    predicate: (change: HolderChange) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<HolderChange>;
  stop(): void;
}

/** The test's own record of who holds the key: a blocking loop of its own (GET /v1/kv/<key>?index=N). */
export function followHolders(consulAddress: string, key: string): Holders {
  const url = kvUrl(consulAddress, key);
  const changes: HolderChange[] = [];
  const controller = new AbortController();
  const waiters = new Set<() => void>();

  void (async () => {
    let index = 0n;
    while (!controller.signal.aborted) {
      try {
        const res = await fetch(index > 0n ? `${url}?index=${index}&wait=30s` : url, {
          signal: controller.signal,
        });
        const at = performance.now();
        const next = BigInt(res.headers.get('x-consul-index') ?? '0');
        let session: string | null = null;
        if (res.status === 200) {
          const entries = (await res.json()) as Array<{ Session?: string }>;
          session = entries[0]?.Session ?? null;
        } else {
          await res.body?.cancel();
          if (res.status !== 404) throw new Error(`GET ${key}: ${res.status}`);
        }
        index = next < index ? 0n : next;
        if (changes.length === 0 || changes[changes.length - 1]?.session !== session) {
          changes.push({ session, at });
          for (const waiter of [...waiters]) waiter();
        }
      } catch {
        if (controller.signal.aborted) return;
        index = 0n;
        await delay(100);
      }
    }
  })();

  return {
    changes,
    waitFor(predicate, options = {}) {
      const { from = 0, timeoutMs = 20_000 } = options;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = changes.slice(from).find(predicate);
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching holder change in ${timeoutMs} ms: ${JSON.stringify(changes)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop() {
      controller.abort();
    },
  };
}
