/**
 * Running the `consul-leader` CLI, as built (`node packages/discovery/dist/cli/main.js`), for the
 * tests under test/cli/: its environment, one-shot runs, running watches, unique keys, and one
 * Consul dev agent per test file.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import type Consul from 'consul';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { acquire, consulClient, createSession } from './contender.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'packages', 'discovery', 'dist', 'cli', 'main.js');

/** Fails with a hint when the CLI has not been built (the tests run dist/, not src/). */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build first`);
}

/** The environment of the CLI: no CONSUL_* variables of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('CONSUL_')) env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args` to its end: its exit code (null when killed), stdout and stderr. */
function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], env);
}

/** `consul-leader <args> | <reader>` in bash: the CLI's own exit code, the reader's output, the CLI's stderr. */
export function runPiped(
  args: readonly string[],
  reader: string,
  env: NodeJS.ProcessEnv = cleanEnv(),
): Promise<RunResult> {
  const script = `"$0" "$@" | ${reader}; exit "\${PIPESTATUS[0]}"`;
  return run('bash', ['-c', script, process.execPath, CLI, ...args], env);
}

/** The CLI with a stdout whose reader is gone before it writes anything. */
export function runStdoutClosed(
  args: readonly string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

/** A running `watch`, its stdout read line by line. */
export class WatchProcess {
  readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private readonly lines: string[] = [];
  private stderr = '';
  /** Everything written to stdout so far. */
  raw = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `command`: what runs the CLI (default: `node <cli>`); `args` follow it. */
  constructor(
    args: readonly string[],
    env: NodeJS.ProcessEnv = cleanEnv(),
    command: readonly string[] = [process.execPath, CLI],
  ) {
    const [file, ...first] = command as [string, ...string[]];
    this.child = spawn(file, [...first, ...args], { env });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.raw += chunk;
      this.buffered += chunk;
      const parts = this.buffered.split('\n');
      this.buffered = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** The next stdout line, or a failure after `timeoutMs` (a deadline, not an assertion on timing). */
  async nextLine(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) {
        throw new Error(`no line from watch within ${timeoutMs} ms; stderr: ${this.stderr}`);
      }
      if (this.child.exitCode !== null) throw new Error(`watch exited early; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.lines.shift() as string;
  }

  async nextJson(): Promise<Record<string, unknown>> {
    return JSON.parse(await this.nextLine()) as Record<string, unknown>;
  }

  /** Waits until stdout so far satisfies `check` (a deadline, not an assertion on timing). */
  async until(what: string, check: (raw: string) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.raw)) {
      if (Date.now() > deadline) {
        throw new Error(
          `not seen within ${timeoutMs} ms: ${what}; stdout: ${JSON.stringify(this.raw.slice(-2000))}`,
        );
      }
      if (this.child.exitCode !== null) throw new Error(`exited early; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** What it wrote on stderr so far. */
  get errors(): string {
    return this.stderr;
  }

  /** The stdout lines received and not read yet (waits `settleMs` for more first). */
  async pending(settleMs = 500): Promise<string[]> {
    await new Promise((r) => setTimeout(r, settleMs));
    return this.lines.splice(0);
  }

  /** Its exit, without a signal sent. */
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  async stop(
    signal: NodeJS.Signals = 'SIGINT',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

let counter = 0;
export const uniqueKey = (name: string): string =>
  `cli-test/${name}/${process.pid}-${Date.now().toString(36)}-${(counter += 1)}`;
export const uniquePrefix = (name: string): string => `${uniqueKey(name)}/`;

/** The rows of a table printed without a terminal, split on the two-space gaps. */
export const rowsOf = (stdout: string): string[][] =>
  stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {2,}/));

/** A Consul dev agent for the tests of one file, and what they do with it. */
export interface CliAgent {
  readonly agent: ConsulAgent;
  /** A client of the agent, to write the keys the CLI reads. */
  readonly client: Consul;
  /** The CLI's environment: `cleanEnv()` with CONSUL_HTTP_ADDR the agent's address. */
  readonly env: NodeJS.ProcessEnv;
  /** A new session named `name` acquires `key` with `value`; its ID. */
  takeLead(key: string, value: string, name?: string): Promise<string>;
  /** A `WatchProcess` (same arguments), killed after the file's tests if it still runs. */
  watch(args: readonly string[], env?: NodeJS.ProcessEnv, command?: readonly string[]): WatchProcess;
}

/**
 * Starts an agent before the tests of the enclosing describe (or file) and stops it, and every
 * watch still running, after them. Once per file: each agent costs a second or two.
 */
export function useCliAgent(): CliAgent {
  let started: { agent: ConsulAgent; client: Consul; env: NodeJS.ProcessEnv } | undefined;
  const watches: WatchProcess[] = [];
  const current = (): NonNullable<typeof started> => {
    if (!started) throw new Error('the agent starts in beforeAll: use it in a test or a hook');
    return started;
  };

  beforeAll(async () => {
    requireBuiltCli();
    const agent = await startConsulAgent();
    started = {
      agent,
      client: consulClient(agent.address),
      env: cleanEnv({ CONSUL_HTTP_ADDR: agent.address }),
    };
  });

  afterAll(async () => {
    for (const watch of watches) watch.kill();
    await started?.agent.destroy();
  });

  return {
    get agent() {
      return current().agent;
    },
    get client() {
      return current().client;
    },
    get env() {
      return current().env;
    },
    async takeLead(key, value, name = 'cli-test') {
      const session = await createSession(current().client, { name });
      expect(await acquire(current().client, key, session, value)).toBe(true);
      return session;
    },
    watch(args, env, command) {
      const watch = new WatchProcess(args, env, command);
      watches.push(watch);
      return watch;
    },
  };
}
