/**
 * `pnpm demo`: leader election on a real Consul agent, followed by the CLI.
 *
 * Starts a `consul agent -dev`, three contenders (examples/contender) campaigning
 * for `service/demo/leader`, and `consul-leader watch` on that key. Every ~8 s,
 * while there is a leader, it alternately makes the leader step down (SIGUSR1:
 * the next leader follows at once) or crashes it (SIGKILL: the key stays held
 * until the session's TTL runs out, then is vacant for the lock-delay), and
 * restarts a crashed contender as a new process.
 *
 *   pnpm demo                       # 90 s
 *   DEMO_SECONDS=40 pnpm demo       # or: tsx examples/demo/run.ts --seconds 40
 *
 * Ctrl-C stops it early. Every child process and the agent are stopped on the
 * way out, whatever the way out.
 */
import Consul from 'consul';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CONTENDER = join(ROOT, 'examples', 'contender', 'contender.ts');
const CLI = join(ROOT, 'packages', 'discovery', 'dist', 'cli', 'main.js');
const KEY = 'service/demo/leader';
const TTL = '10s';
const LOCK_DELAY = '5s';
const ACTION_EVERY_MS = 8_000;
/** A new leader keeps the lead at least this long before the next action. */
const MIN_LEAD_MS = 4_000;
/** A crashed contender comes back as a new process this long after the kill. */
const RESTART_AFTER_MS = 3_000;
const NAMES = ['c1', 'c2', 'c3'] as const;

// ---- options

/** How long the demo runs: `--seconds N`, else `DEMO_SECONDS`, else 90. Exits 2 on a usage error. */
function demoSeconds(): number {
  try {
    const { values } = parseArgs({ options: { seconds: { type: 'string' } }, strict: true });
    const text = values.seconds ?? process.env.DEMO_SECONDS ?? '90';
    const seconds = Number(text);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new Error(`--seconds / DEMO_SECONDS: expected a positive number of seconds, got "${text}"`);
    }
    return seconds;
  } catch (err) {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    console.error('usage: tsx examples/demo/run.ts [--seconds N]   (or DEMO_SECONDS=N; default 90)');
    process.exit(2);
  }
}

// ---- output: every line gets the time since the start

const started = Date.now();
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
/** A duration for people: milliseconds below a second. */
const dur = (ms: number): string => (ms < 1000 ? `${Math.round(ms)}ms` : secs(ms));
function print(line: string): void {
  console.log(`${secs(Date.now() - started).padStart(6)} ${line}`);
}
const say = (line: string): void => print(`[demo] ${line}`);

function forwardLines(child: ChildProcess, prefix: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => print(`${prefix}${line}`));
  }
}

// ---- child processes

interface Contender {
  readonly name: string;
  readonly port: number;
  process: ChildProcess;
  /** Set when the demo itself kills or stops it: its exit is then expected. */
  expectedExit: boolean;
}

const contenders: Contender[] = [];
let cli: ChildProcess | undefined;
let agent: ConsulAgent | undefined;
let agentStarting: Promise<ConsulAgent> | undefined;
let consul: Consul | undefined;
let keyWatch: ReturnType<Consul['watch']> | undefined;

const running = (child: ChildProcess | undefined): child is ChildProcess =>
  child !== undefined && child.exitCode === null && child.signalCode === null;

function spawnContender(name: string, port: number, address: string): ChildProcess {
  // `node --import tsx` runs the TypeScript in this very process (no wrapper
  // process), so signals sent to it reach the contender itself.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CONTENDER,
      ...['--addr', address, '--key', KEY, '--name', name],
      ...['--host', '127.0.0.1', '--port', String(port), '--ttl', TTL, '--lock-delay', LOCK_DELAY],
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  forwardLines(child, '');
  return child;
}

function startContender(name: string, port: number, address: string): Contender {
  const contender: Contender = {
    name,
    port,
    process: spawnContender(name, port, address),
    expectedExit: false,
  };
  watchExit(contender);
  return contender;
}

function watchExit(contender: Contender): void {
  const child = contender.process;
  child.once('exit', (code, signal) => {
    if (contender.expectedExit || shuttingDown) return;
    say(`${contender.name} (pid ${child.pid}) exited on its own (${signal ?? `code ${code}`})`);
  });
}

/** Sends `signal`, then SIGKILL after `graceMs`; resolves when the process is gone. */
function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!running(child)) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

// ---- the key, read through node-consul (the demo's own ground truth, not the SDK)

/** A KV entry as Consul returns it (node-consul's type has no `Session`). */
interface KvEntry {
  readonly Value: string | null;
  readonly Session?: string;
}

interface Descriptor {
  readonly name: string;
  readonly pid: number;
}

function descriptorOf(entry: KvEntry | undefined): Descriptor | undefined {
  if (!entry?.Value) return undefined;
  try {
    const value = JSON.parse(entry.Value) as { name?: unknown; pid?: unknown } | null;
    if (typeof value?.name === 'string' && typeof value.pid === 'number') {
      return { name: value.name, pid: value.pid };
    }
  } catch {
    // not a descriptor
  }
  return undefined;
}

async function readKey(client: Consul): Promise<KvEntry | undefined> {
  return ((await client.kv.get(KEY)) ?? undefined) as KvEntry | undefined;
}

// ---- narration: what happened after each action, timed from the key's blocking query

type Action = 'step-down' | 'crash';
let waitingFor: string | undefined;
let lastAction: { readonly kind: Action; readonly name: string; readonly at: number } | undefined;
let holderSession: string | null | undefined;
/** When the current holder took the key (0: nobody yet). */
let leaderSince = 0;
let vacantSince: number | undefined;

function followKey(client: Consul): ReturnType<Consul['watch']> {
  const watch = client.watch({ method: client.kv.get, options: { key: KEY } });
  watch.on('change', (entry: KvEntry | undefined) => {
    const now = Date.now();
    const session = entry?.Session ?? null;
    if (session === holderSession) return;
    const previous = holderSession;
    holderSession = session;
    if (session === null) {
      vacantSince = now;
      if (lastAction?.kind === 'crash' && previous !== undefined) {
        say(
          `${lastAction.name}'s session expired ${secs(now - lastAction.at)} after the crash: ` +
            `the key is released, and the lock-delay (${LOCK_DELAY}) refuses acquires for now`,
        );
      }
      return;
    }
    leaderSince = now;
    const holder = descriptorOf(entry);
    let line = holder
      ? `${holder.name} (pid ${holder.pid}) leads`
      : 'a session that is not one of ours leads';
    if (lastAction)
      line += `, ${dur(now - lastAction.at)} after the ${lastAction.kind} of ${lastAction.name}`;
    if (vacantSince !== undefined && lastAction) line += ` (vacant for ${dur(now - vacantSince)})`;
    say(line);
    lastAction = undefined;
    vacantSince = undefined;
  });
  watch.on('error', (err: unknown) => say(`key watch: ${err instanceof Error ? err.message : String(err)}`));
  return watch;
}

// ---- stopping

let shuttingDown = false;
const stopRequested = new AbortController();

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (stopRequested.signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      stopRequested.signal.removeEventListener('abort', done);
      resolve();
    }
    stopRequested.signal.addEventListener('abort', done, { once: true });
  });
}

/** Last resort on the way out (synchronous): nothing survives the demo. */
function killEverything(): void {
  for (const c of contenders) if (running(c.process)) c.process.kill('SIGKILL');
  if (running(cli)) cli.kill('SIGKILL');
  if (agent) {
    try {
      const proc = agent.process();
      if (running(proc)) proc.kill('SIGKILL');
    } catch {
      // never started
    }
  }
}

async function shutdown(reason: string, code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  stopRequested.abort();
  say(`stopping (${reason}): contenders release their keys and sessions, then the CLI and the agent stop`);
  keyWatch?.end();
  await Promise.all(
    contenders.map((c) => {
      c.expectedExit = true;
      return stopChild(c.process, 'SIGTERM', 6_000);
    }),
  );
  // Let the CLI print the last change (the contenders released the key) before it stops.
  if (running(cli)) await new Promise((resolve) => setTimeout(resolve, 300));
  await stopChild(cli, 'SIGTERM', 3_000);
  consul?.destroy();
  // Stopped while the agent was still starting: wait for it, to stop it too.
  agent ??= await agentStarting?.catch(() => undefined);
  await agent?.destroy().catch(() => undefined);
  killEverything();
  say(code === 0 ? 'done' : 'done (with errors)');
  process.exit(code);
}

process.on('exit', killEverything);
for (const [signal, reason] of [
  ['SIGINT', 'Ctrl-C'],
  ['SIGTERM', 'SIGTERM'],
  ['SIGHUP', 'SIGHUP'],
] as const) {
  process.on(signal, () => {
    if (!shuttingDown) return void shutdown(reason, 0);
    // A second Ctrl-C: no more patience.
    killEverything();
    process.exit(1);
  });
}
// Output piped into a reader that went away (`pnpm demo | head`): stop quietly.
process.stdout.on('error', () => void shutdown('stdout closed', 0));
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err: unknown) => {
    console.error(err);
    void shutdown(event, 1);
  });
}

// ---- the demo

/** Acts on the current leader; else says why not (once per reason) and returns false. */
async function act(client: Consul, kind: Action, address: string): Promise<boolean> {
  const entry = await readKey(client);
  const holder = entry?.Session ? descriptorOf(entry) : undefined;
  const leader = contenders.find(
    (c) => holder && c.name === holder.name && c.process.pid === holder.pid && running(c.process),
  );
  if (shuttingDown) return false;
  if (!leader) {
    const why = !entry?.Session
      ? 'the key is vacant'
      : holder
        ? `the key is still held by the session of ${holder.name} (pid ${holder.pid}), a process that is gone`
        : 'the key is held by a session that is not one of ours';
    if (why !== waitingFor) say(`${why}: the ${kind} waits for a live leader`);
    waitingFor = why;
    return false;
  }
  waitingFor = undefined;
  const pid = leader.process.pid;
  if (kind === 'step-down') {
    say(`asking ${leader.name} (pid ${pid}) to step down (SIGUSR1): expect the next leader at once`);
    lastAction = { kind, name: leader.name, at: Date.now() };
    leader.process.kill('SIGUSR1');
    return true;
  }
  say(
    `crashing ${leader.name} (pid ${pid}, SIGKILL): expect its session to hold the key until the TTL ` +
      `expires (${TTL}..2×${TTL}), then "vacant" until the lock-delay (${LOCK_DELAY}) passes`,
  );
  lastAction = { kind, name: leader.name, at: Date.now() };
  leader.expectedExit = true;
  leader.process.kill('SIGKILL');
  void sleep(RESTART_AFTER_MS).then(() => {
    if (shuttingDown) return;
    leader.process = spawnContender(leader.name, leader.port, address);
    leader.expectedExit = false;
    watchExit(leader);
    say(`restarted ${leader.name} as a new process (pid ${leader.process.pid})`);
  });
  return true;
}

const seconds = demoSeconds();

// Run through a wrapper (tsx, pnpm) that died without passing a signal on: stop too.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void shutdown('the parent process exited', 1);
}, 1_000).unref();

async function main(): Promise<void> {
  const deadline = started + seconds * 1000;
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing: run \`pnpm build\` first`);

  say('starting a Consul dev agent');
  agentStarting = startConsulAgent();
  agent = await agentStarting;
  if (shuttingDown) return;
  const address = agent.address;
  consul = new Consul({ host: agent.host, port: agent.port });
  say(`Consul dev agent at ${address}`);

  const cliArgs = [relative(ROOT, CLI), 'watch', KEY, '--addr', address];
  say(`following the leader with: node ${cliArgs.join(' ')}`);
  cli = spawn(process.execPath, cliArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  forwardLines(cli, '[cli] ');
  cli.once('exit', (code, signal) => {
    if (!shuttingDown) void shutdown(`the CLI exited (${signal ?? `code ${code}`})`, 1);
  });
  // Let the CLI show the empty key first (its first line), at most 10 s.
  const firstLine = cli.stdout;
  if (firstLine) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      firstLine.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      cli?.once('exit', () => resolve());
    });
  }
  if (shuttingDown) return;

  say(
    `starting contenders ${NAMES.join(', ')} on ${KEY} (session TTL ${TTL}, lock-delay ${LOCK_DELAY}); ` +
      `running for ${seconds}s (Ctrl-C stops)`,
  );
  NAMES.forEach((name, i) => contenders.push(startContender(name, 9001 + i, address)));
  keyWatch = followKey(consul);

  const kinds: Action[] = ['step-down', 'crash'];
  let next = 0;
  let nextActionAt = Date.now();
  while (!shuttingDown && Date.now() < deadline) {
    await sleep(Math.max(0, Math.min(nextActionAt, deadline) - Date.now()));
    if (shuttingDown || Date.now() >= deadline) break;
    if (leaderSince === 0) {
      // The contenders are still starting.
      nextActionAt = Date.now() + 500;
      continue;
    }
    if (Date.now() < leaderSince + MIN_LEAD_MS) {
      // A new leader (the first one, or one after a crash) leads for a while first.
      nextActionAt = leaderSince + MIN_LEAD_MS;
      continue;
    }
    const kind = kinds[next % kinds.length] ?? 'step-down';
    let acted = false;
    try {
      acted = await act(consul, kind, address);
    } catch (err) {
      say(`reading ${KEY} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (acted) next += 1;
    // Without a live leader (a crash being recovered from), try again each second.
    nextActionAt = Date.now() + (acted ? ACTION_EVERY_MS : 1_000);
  }
  if (!shuttingDown) await shutdown(`${seconds}s are up`, 0);
}

main().catch((err: unknown) => {
  say(`error: ${err instanceof Error ? err.message : String(err)}`);
  void shutdown('error', 1);
});
