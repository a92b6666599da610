/**
 * The `consul-leader` CLI, as built (`node packages/discovery/dist/cli/main.js`),
 * against a real Consul dev agent.
 */
import { type ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type Consul from 'consul';
import type { ErrorInfo, LeaderState, SettledLeaderState } from '@consul-leader/types';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, put, release } from './support/contender.js';
import { electWhenReady, startAclAgent } from './support/acl.js';
import { helpText, parseCliArgs } from '../packages/discovery/src/cli/args.js';
import {
  jsonReplacer,
  stateJson,
  stateJsonLine,
  stateLine,
  statesJson,
  writeState,
} from '../packages/discovery/src/cli/format.js';
import { PrefixView } from '../packages/discovery/src/cli/prefix-view.js';
import {
  type TableRow,
  cutVisible,
  formatAge,
  renderTable,
  renderWatchScreen,
} from '../packages/discovery/src/cli/table.js';
import { sessionInfo } from '../packages/discovery/src/test-fixtures.js';

type State = LeaderState<unknown, ErrorInfo>;
type Settled = SettledLeaderState<unknown, ErrorInfo>;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages', 'discovery', 'dist', 'cli', 'main.js');

/** The environment of the CLI: no CONSUL_* variables of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('CONSUL_')) env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A running `watch`, its stdout read line by line. */
class WatchProcess {
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
const uniqueKey = (name: string): string =>
  `cli-test/${name}/${process.pid}-${Date.now().toString(36)}-${(counter += 1)}`;

describe('consul-leader CLI', () => {
  let agent: ConsulAgent;
  let client: Consul;
  let env: NodeJS.ProcessEnv;
  const watches: WatchProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the build first`);
    agent = await startConsulAgent();
    client = consulClient(agent.address);
    env = cleanEnv({ CONSUL_HTTP_ADDR: agent.address });
  });

  afterAll(async () => {
    for (const watch of watches) watch.kill();
    await agent?.destroy();
  });

  const takeLead = async (key: string, value: string, name = 'cli-test'): Promise<string> => {
    const session = await createSession(client, { name });
    expect(await acquire(client, key, session, value)).toBe(true);
    return session;
  };

  describe('get', () => {
    it('exits 3 with a "no leader" line when the key is missing', async () => {
      const key = uniqueKey('missing');
      const human = await runCli(['get', key], env);
      expect(human.code).toBe(3);
      expect(human.stdout).toContain('no leader');
      expect(human.stdout).toContain(key);

      const json = await runCli(['get', key, '--json'], env);
      expect(json.code).toBe(3);
      expect(JSON.parse(json.stdout)).toBeNull();
    });

    it('exits 0 and prints the leader as JSON after an acquire', async () => {
      const key = uniqueKey('held');
      const session = await takeLead(key, JSON.stringify({ host: '10.0.0.7', port: 5432 }), 'db-primary');
      const res = await runCli(['get', key, '--json'], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout.trim().split('\n')).toHaveLength(1);
      const leader = JSON.parse(res.stdout) as {
        key: string;
        lockIndex: string;
        modifyIndex: string;
        node: { host: string; port: number };
        session: { id: string; name: string; node: string; createIndex: string };
      };
      expect(leader.key).toBe(key);
      expect(leader.node).toEqual({ host: '10.0.0.7', port: 5432 });
      expect(leader.session.id).toBe(session);
      expect(leader.session.name).toBe('db-primary');
      expect(leader.session.node).toEqual(expect.any(String));
      // bigints come out as decimal strings
      expect(leader.lockIndex).toBe('1');
      expect(leader.modifyIndex).toMatch(/^\d+$/);
      expect(leader.session.createIndex).toMatch(/^\d+$/);
    });

    it('prints a human line with the descriptor, session and node without --json', async () => {
      const key = uniqueKey('human');
      const session = await takeLead(key, JSON.stringify({ host: 'a', port: 1 }));
      const res = await runCli(['get', key], env);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(
        new RegExp(`^\\S+Z leader  ${key}  \\{"host":"a","port":1\\}  session=${session} node=\\S+\\n$`),
      );
      expect(res.stdout).not.toContain('\u001b[');
    });

    it('decodes the value as text with --decode text', async () => {
      const key = uniqueKey('text');
      await takeLead(key, 'db-1.internal:5432');
      const text = await runCli(['get', key, '--json', '--decode', 'text'], env);
      expect(text.code).toBe(0);
      expect((JSON.parse(text.stdout) as { node: unknown }).node).toBe('db-1.internal:5432');

      // The same value is not JSON: with the default decoding there is no leader to route to.
      const json = await runCli(['get', key, '--json'], env);
      expect(json.code).toBe(3);
    });

    it('exits 3 after the leader releases the key', async () => {
      const key = uniqueKey('released');
      const session = await takeLead(key, '{"host":"b"}');
      expect((await runCli(['get', key], env)).code).toBe(0);
      expect(await release(client, key, session)).toBe(true);
      expect((await runCli(['get', key], env)).code).toBe(3);
    });

    it('--addr and --token override the environment, and the token is never printed', async () => {
      const key = uniqueKey('addr');
      await takeLead(key, '{"host":"c"}');
      const token = 'secret-token-3b0e1c5a';
      const res = await runCli(
        ['get', key, '--addr', `http://${agent.address}`, '--token', token, '--consistency', 'stale'],
        cleanEnv({ CONSUL_HTTP_ADDR: `${agent.host}:1` }),
      );
      expect(res.code).toBe(0);
      expect(res.stdout + res.stderr).not.toContain(token);
    });

    it('exits 1 with CONSUL_UNREACHABLE on stderr when --addr points at a closed port', async () => {
      const token = 'secret-token-9f2d';
      const res = await runCli(
        ['get', uniqueKey('closed'), '--addr', `${agent.host}:1`, '--token', token],
        env,
      );
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('CONSUL_UNREACHABLE');
      expect(res.stderr).not.toContain(token);
    });
  });

  describe('watch', () => {
    it('--json prints vacant, then the leader after an acquire, then vacant after the release; SIGINT exits 0', async () => {
      const key = uniqueKey('watch');
      const watch = new WatchProcess(['watch', key, '--json'], env);
      watches.push(watch);

      const first = await watch.nextJson();
      expect(first).toMatchObject({ status: 'vacant', key, reason: 'key-missing' });
      expect(new Date(first.time as string).toISOString()).toBe(first.time);
      expect((first.consul as { index: unknown }).index).toMatch(/^\d+$/);

      const session = await takeLead(key, JSON.stringify({ host: 'w', port: 7 }), 'watcher-test');
      const second = await watch.nextJson();
      expect(second).toMatchObject({
        status: 'leader',
        key,
        leader: { key, node: { host: 'w', port: 7 }, session: { id: session, name: 'watcher-test' } },
      });
      expect((second.leader as { lockIndex: unknown }).lockIndex).toBe('1');

      expect(await release(client, key, session)).toBe(true);
      const third = await watch.nextJson();
      expect(third).toMatchObject({ status: 'vacant', key, reason: 'no-session' });

      const exit = await watch.stop('SIGINT');
      expect(exit).toEqual({ code: 0, signal: null });
    });

    it('prints human lines without --json and exits 0 on SIGTERM', async () => {
      const key = uniqueKey('watch-human');
      const watch = new WatchProcess(['watch', key], env);
      watches.push(watch);
      expect(await watch.nextLine()).toMatch(new RegExp(`^\\S+Z vacant  ${key}  reason=key-missing$`));
      await takeLead(key, 'not json');
      const invalid = await watch.nextLine();
      expect(invalid).toMatch(new RegExp(`^\\S+Z invalid  ${key}  INVALID_DESCRIPTOR: `));
      expect(invalid).toContain('session=');
      expect(await watch.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    });

    it('reports unreachable states with the error code, attempt and retry delay', async () => {
      const watch = new WatchProcess([
        'watch',
        uniqueKey('watch-down'),
        '--json',
        '--addr',
        `${agent.host}:1`,
      ]);
      watches.push(watch);
      const line = await watch.nextJson();
      expect(line).toMatchObject({
        status: 'unreachable',
        error: { code: 'CONSUL_UNREACHABLE' },
        attempt: 1,
        lastKnown: null,
      });
      expect(line.retryInMs).toEqual(expect.any(Number));
      expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
    });
  });

  const uniquePrefix = (name: string): string => `${uniqueKey(name)}/`;
  /** The rows of a table printed without a terminal, split on the two-space gaps. */
  const rowsOf = (stdout: string): string[][] =>
    stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/ {2,}/));

  describe('list', () => {
    /** Two held keys, a vacant one and one holding an invalid value. */
    const fleet = async (prefix: string): Promise<{ a: string; b: string }> => {
      const a = await takeLead(`${prefix}a/leader`, JSON.stringify({ host: 'a', port: 1 }), 'fleet-a');
      const b = await takeLead(`${prefix}b/leader`, JSON.stringify({ host: 'b', port: 2 }), 'fleet-b');
      await put(client, `${prefix}c/leader`, '');
      expect(await acquire(client, `${prefix}d/leader`, b, 'not json')).toBe(true);
      return { a, b };
    };

    it('prints one row per key, sorted, with the leader, its Consul node and session', async () => {
      const prefix = uniquePrefix('list');
      const { a, b } = await fleet(prefix);
      const res = await runCli(['list', prefix], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).not.toContain('\u001b[');
      const rows = rowsOf(res.stdout);
      expect(rows[0]).toEqual(['KEY', 'STATE', 'LEADER', 'CONSUL NODE', 'SESSION']);
      // Not a terminal: values in full, columns aligned.
      const node = (rows[1] as string[])[3] as string;
      expect(node).toMatch(/^\S+$/);
      expect(rows.slice(1)).toEqual([
        [`${prefix}a/leader`, 'leader', '{"host":"a","port":1}', node, a.slice(0, 8)],
        [`${prefix}b/leader`, 'leader', '{"host":"b","port":2}', node, b.slice(0, 8)],
        [`${prefix}c/leader`, 'vacant', '(no-session)', '-', '-'],
        [
          `${prefix}d/leader`,
          'invalid',
          expect.stringMatching(/^raw="not json" \(value cannot be decoded: /),
          node,
          b.slice(0, 8),
        ],
      ]);
      const lines = res.stdout.trimEnd().split('\n');
      const stateColumn = (lines[0] as string).indexOf('STATE');
      for (const line of lines) expect(line.slice(stateColumn)).toMatch(/^(STATE|leader|vacant|invalid)/);
    });

    it('--json prints a JSON array of the states, bigints as strings, errors as { code, message }', async () => {
      const prefix = uniquePrefix('list-json');
      const { a, b } = await fleet(prefix);
      const res = await runCli(['list', prefix, '--json'], env);
      expect(res.code).toBe(0);
      expect(res.stdout.trim().split('\n')).toHaveLength(1);
      const states = JSON.parse(res.stdout) as Record<string, unknown>[];
      expect(states.map((s) => [s.key, s.status])).toEqual([
        [`${prefix}a/leader`, 'leader'],
        [`${prefix}b/leader`, 'leader'],
        [`${prefix}c/leader`, 'vacant'],
        [`${prefix}d/leader`, 'invalid'],
      ]);
      expect(states[0]).toMatchObject({
        leader: { node: { host: 'a', port: 1 }, lockIndex: '1', session: { id: a, name: 'fleet-a' } },
        consul: { index: expect.stringMatching(/^\d+$/), knownLeader: true },
      });
      expect(states[1]).toMatchObject({ leader: { session: { id: b } } });
      expect(states[2]).toMatchObject({ reason: 'no-session' });
      expect(states[3]).toMatchObject({
        raw: 'not json',
        session: { id: b },
        entry: { lockIndex: '1', modifyIndex: expect.stringMatching(/^\d+$/) },
        error: { code: 'INVALID_DESCRIPTOR', message: expect.stringContaining('cannot be decoded') },
      });
      expect(Object.keys(states[3]?.error as object).sort()).toEqual(['code', 'message']);
    });

    it('--decode text reads every value as text', async () => {
      const prefix = uniquePrefix('list-text');
      await takeLead(`${prefix}x`, 'db-1.internal:5432');
      const res = await runCli(['list', prefix, '--json', '--decode', 'text'], env);
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject([
        { status: 'leader', leader: { node: 'db-1.internal:5432' } },
      ]);
    });

    it('exits 0 with an empty table, or [], on a prefix without keys', async () => {
      const prefix = uniquePrefix('list-empty');
      const table = await runCli(['list', prefix], env);
      expect(table).toEqual({ code: 0, stdout: 'KEY  STATE  LEADER  CONSUL NODE  SESSION\n', stderr: '' });
      const json = await runCli(['list', prefix, '--json'], env);
      expect(json).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    });

    it('exits 1 with CONSUL_UNREACHABLE on stderr when --addr points at a closed port', async () => {
      for (const extra of [[], ['--json']]) {
        const res = await runCli(
          ['list', uniquePrefix('list-closed'), '--addr', `${agent.host}:1`, ...extra],
          env,
        );
        expect(res.code).toBe(1);
        expect(res.stdout).toBe('');
        expect(res.stderr).toMatch(/^consul-leader: CONSUL_UNREACHABLE: .*refused/);
      }
    });
  });

  describe('watch --prefix', () => {
    it('--json prints a line per key, then a line per change; SIGINT exits 0', async () => {
      const prefix = uniquePrefix('watch-prefix');
      const a = await takeLead(`${prefix}a/leader`, JSON.stringify({ host: 'a' }), 'prefix-a');
      await put(client, `${prefix}b/leader`, '');
      const watch = new WatchProcess(['watch', '--prefix', prefix, '--json'], env);
      watches.push(watch);

      const first = await watch.nextJson();
      const second = await watch.nextJson();
      expect(first).toMatchObject({
        status: 'leader',
        key: `${prefix}a/leader`,
        leader: { session: { id: a } },
      });
      expect(second).toMatchObject({ status: 'vacant', key: `${prefix}b/leader`, reason: 'no-session' });
      expect(new Date(first.time as string).toISOString()).toBe(first.time);
      expect((first.leader as { lockIndex: unknown }).lockIndex).toBe('1');

      // One key changes: one line, for that key only.
      const b = await takeLead(`${prefix}b/leader`, JSON.stringify({ host: 'b' }), 'prefix-b');
      expect(await watch.nextJson()).toMatchObject({
        status: 'leader',
        key: `${prefix}b/leader`,
        leader: { node: { host: 'b' }, session: { id: b, name: 'prefix-b' } },
      });
      // A key deleted while watched: vacant (key-missing), as `watch <key>` says it.
      await client.kv.del(`${prefix}a/leader`);
      expect(await watch.nextJson()).toMatchObject({
        status: 'vacant',
        key: `${prefix}a/leader`,
        reason: 'key-missing',
        consul: { index: expect.stringMatching(/^\d+$/) },
      });
      // A new key.
      await put(client, `${prefix}c/leader`, '');
      expect(await watch.nextJson()).toMatchObject({ status: 'vacant', key: `${prefix}c/leader` });
      expect(await watch.pending()).toEqual([]);

      expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(watch.errors).toBe('');
    });

    it('without a terminal prints the lines of watch <key>, one per changed key; SIGTERM exits 0', async () => {
      const prefix = uniquePrefix('watch-prefix-plain');
      const a = await takeLead(`${prefix}a`, JSON.stringify({ host: 'a', port: 1 }));
      await put(client, `${prefix}b`, '');
      const watch = new WatchProcess(['watch', '--prefix', prefix], env);
      watches.push(watch);
      expect(await watch.nextLine()).toMatch(
        new RegExp(`^\\S+Z leader  ${prefix}a  \\{"host":"a","port":1\\}  session=${a} node=\\S+$`),
      );
      expect(await watch.nextLine()).toMatch(new RegExp(`^\\S+Z vacant  ${prefix}b  reason=no-session$`));
      await takeLead(`${prefix}b`, 'not json');
      const invalid = await watch.nextLine();
      expect(invalid).toMatch(new RegExp(`^\\S+Z invalid  ${prefix}b  INVALID_DESCRIPTOR: `));
      expect(await watch.pending()).toEqual([]);
      expect(watch.raw).not.toContain('\u001b[');
      expect(await watch.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    });

    it('says on stderr that Consul cannot be read when no key is known, and exits 0 on SIGINT', async () => {
      const watch = new WatchProcess([
        'watch',
        '--prefix',
        uniquePrefix('down'),
        '--addr',
        `${agent.host}:1`,
      ]);
      watches.push(watch);
      const deadline = Date.now() + 20_000;
      while (!watch.errors.includes('CONSUL_UNREACHABLE') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(watch.errors).toMatch(/^consul-leader: CONSUL_UNREACHABLE: .*\(no key known under "cli-test\//);
      expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(watch.raw).toBe('');
      // Said once, not at every retry.
      expect(watch.errors.trim().split('\n')).toHaveLength(1);
    });

    const hasScript = ((): boolean => {
      try {
        execFileSync('script', ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();

    it.skipIf(!hasScript)(
      'on a terminal, draws a table in place, redraws it on a change, and restores the screen on Ctrl-C',
      async () => {
        const prefix = uniquePrefix('tty');
        await takeLead(`${prefix}a`, JSON.stringify({ host: 'tty-a' }));
        await put(client, `${prefix}b`, '');
        // util-linux `script` runs the CLI on a pseudo-terminal; Ctrl-C written to it is a SIGINT.
        const shell = `stty cols 120 rows 20; exec "${process.execPath}" "${CLI}" watch --prefix "${prefix}"`;
        const colourEnv = { ...env, NO_COLOR: '' };
        const watch = new WatchProcess([shell, '/dev/null'], colourEnv, ['script', '-qec']);
        watches.push(watch);
        await watch.until('the first table', (raw) => raw.includes(`${prefix}b`));
        expect(watch.raw.startsWith('\u001b[?1049h')).toBe(true); // the alternate screen
        expect(watch.raw).toContain('\u001b[H'); // drawn from the top-left corner
        expect(watch.raw).toContain('KEY');
        expect(watch.raw).toContain('SINCE');
        expect(watch.raw).toContain('\u001b[32mleader\u001b[0m');
        expect(watch.raw).toContain('\u001b[33mvacant\u001b[0m');
        expect(watch.raw).toMatch(/Consul: ok {2}\| {2}2 keys: 1 leader, 1 vacant/);

        await takeLead(`${prefix}b`, JSON.stringify({ host: 'tty-b' }));
        await watch.until('the redrawn table', (raw) => raw.includes('{"host":"tty-b"}'));
        expect(watch.raw).toMatch(/2 keys: 2 leader/);
        // Every line of a frame fits the 120 columns.
        const frame = watch.raw.slice(watch.raw.lastIndexOf('\u001b[H'));
        // eslint-disable-next-line no-control-regex
        const escapes = /\u001b\[[0-9;?]*[A-Za-z]/g;
        for (const line of frame.replace(escapes, '').split(/\r?\n/)) {
          expect(Array.from(line).length).toBeLessThanOrEqual(120);
        }

        watch.child.stdin.write('\u0003');
        expect(await watch.exit()).toEqual({ code: 0, signal: null });
        expect(watch.raw.trimEnd().endsWith('\u001b[?25h\u001b[?1049l')).toBe(true); // the screen restored
      },
    );
  });

  describe('usage', () => {
    it.each([
      [[]],
      [['get']],
      [['watch']],
      [['status', 'k']],
      [['get', 'k', 'extra']],
      [['get', 'k', '--bogus']],
      [['get', 'k', '--consistency', 'eventual']],
      [['get', 'k', '--decode', 'yaml']],
      [['watch', 'k', '--addr']],
      [['get', 'k', '--json=yes']],
      [['list']],
      [['list', '']],
      [['list', 'p/', 'extra']],
      [['list', 'p/', '--prefix', 'q/']],
      [['get', 'k', '--prefix', 'p/']],
      [['watch', 'k', '--prefix', 'p/']],
      [['watch', '--prefix']],
      [['watch', '--prefix', '']],
      [['watch', '--prefix', 'p/', '--decode', 'yaml']],
    ])('%j exits 2 with the usage on stderr', async (args) => {
      const res = await runCli(args, env);
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('Usage:');
      expect(res.stderr).toContain('consul-leader watch <key>');
    });

    it.each([
      [['--help']],
      [['-h']],
      [['get', '--help']],
      [['watch', 'k', '-h']],
      [['list', '--help']],
      [['watch', '--help']],
      [['watch', '--prefix', 'p/', '-h']],
      [['list', 'p/', '-h']],
    ])('%j prints the usage with the exit codes and exits 0', async (args) => {
      const res = await runCli(args, env);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('Usage:');
      for (const code of ['0', '1', '2', '3']) expect(res.stdout).toMatch(new RegExp(`^  ${code}  `, 'm'));
    });

    it('the usage names every command; each command has its own help', async () => {
      const usage = await runCli(['--help'], env);
      expect(usage.stdout).toContain('consul-leader list <prefix>');
      expect(usage.stdout).toContain('consul-leader watch --prefix <prefix>');
      const list = await runCli(['list', '--help'], env);
      expect(list.stdout).toMatch(/^Usage: consul-leader list <prefix> \[options\]$/m);
      for (const column of ['KEY', 'STATE', 'LEADER', 'CONSUL NODE', 'SESSION']) {
        expect(list.stdout).toMatch(new RegExp(`^  ${column} `, 'm'));
      }
      expect(list.stdout).toContain('--addr <addr>');
      const watch = await runCli(['watch', '--help'], env);
      expect(watch.stdout).toContain('consul-leader watch --prefix <prefix> [options]');
      expect(watch.stdout).toMatch(/^ {2}SINCE /m);
      expect((await runCli(['get', '-h'], env)).stdout).toContain('Usage: consul-leader get <key>');
      expect(helpText('list')).toBe(list.stdout);
    });

    it('a prefix the SDK refuses exits 2', async () => {
      for (const args of [
        ['list', '/x/'],
        ['watch', '--prefix', '/x/'],
      ]) {
        const res = await runCli(args, env);
        expect(res.code).toBe(2);
        expect(res.stderr).toContain('INVALID_OPTION');
      }
    });

    it('parses list <prefix> and watch --prefix <prefix>', () => {
      expect(parseCliArgs(['list', 'svc/', '--json'])).toEqual({
        kind: 'run',
        options: { command: 'list', key: 'svc/', prefix: true, json: true },
      });
      expect(parseCliArgs(['watch', '--prefix', 'svc/', '--dc', 'dc2'])).toEqual({
        kind: 'run',
        options: { command: 'watch', key: 'svc/', prefix: true, json: false, dc: 'dc2' },
      });
      expect(parseCliArgs(['watch', 'svc/k'])).toMatchObject({ options: { key: 'svc/k', prefix: false } });
      expect(parseCliArgs(['list', '--help'])).toEqual({ kind: 'help', command: 'list' });
      expect(parseCliArgs(['--help'])).toEqual({ kind: 'help' });
    });

    it('a key the SDK refuses and an invalid --addr exit 2', async () => {
      const slash = await runCli(['get', '/leading-slash'], env);
      expect(slash.code).toBe(2);
      expect(slash.stderr).toContain('INVALID_OPTION');
      const addr = await runCli(['get', 'k', '--addr', 'ftp://example'], env);
      expect(addr.code).toBe(2);
      expect(addr.stderr).toContain('INVALID_OPTION');
    });

    it('never echoes a --token value in a usage error', () => {
      const parsed = parseCliArgs(['get', 'k', '--token', 'hunter2-token', '--json=hunter2-token']);
      expect(parsed.kind).toBe('usage-error');
      expect(JSON.stringify(parsed)).not.toContain('hunter2-token');
    });
  });

  // Issue #12: any value a leader key can hold, any closed pipe, any bad argument.
  describe('any value, any closed pipe (issue #12)', () => {
    /** 6 KB of JSON nested 3,000 deep: decodable, but too deep for JSON.stringify with a replacer. */
    const DEEP = '['.repeat(3000) + ']'.repeat(3000);
    const TOO_DEEP = /the descriptor cannot be written as JSON: it is nested too deeply/;

    /** Every key under the prefix held by one session, in transactions of 64 (Consul's limit). */
    const holdMany = async (prefix: string, count: number): Promise<void> => {
      const session = await createSession(client, { name: 'many' });
      const ops = Array.from({ length: count }, (_, i) => ({
        KV: {
          Verb: 'lock',
          Key: `${prefix}${String(i).padStart(5, '0')}`,
          Value: Buffer.from(JSON.stringify({ host: `host-${i}.example.internal`, port: 5432 + i })).toString(
            'base64',
          ),
          Session: session,
        },
      }));
      const batches: Promise<void>[] = [];
      for (let i = 0; i < ops.length; i += 64) {
        batches.push(
          fetch(`http://${agent.address}/v1/txn`, {
            method: 'PUT',
            body: JSON.stringify(ops.slice(i, i + 64)),
          }).then(async (res) => {
            if (res.status !== 200) throw new Error(`txn: ${res.status} ${await res.text()}`);
          }),
        );
      }
      await Promise.all(batches);
    };

    /** `consul-leader <args> | <reader>` in bash: the CLI's own exit code, the reader's output, the CLI's stderr. */
    const runPiped = (args: readonly string[], reader: string): Promise<RunResult> =>
      new Promise((resolve) => {
        const script = `"$0" "$@" | ${reader}; exit "\${PIPESTATUS[0]}"`;
        execFile(
          'bash',
          ['-c', script, process.execPath, CLI, ...args],
          { env, timeout: 30_000 },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
            resolve({ code, stdout, stderr });
          },
        );
      });

    /** The CLI with a stdout whose reader is gone before it writes anything. */
    const runStdoutClosed = (args: readonly string[]): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.destroy();
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.once('close', (code) => resolve({ code, stderr }));
      });

    it('get on a value nested too deeply prints it invalid with the reason (text and --json), exit 3', async () => {
      const key = uniqueKey('deep-get');
      const session = await takeLead(key, DEEP);
      const [text, json] = await Promise.all([
        runCli(['get', key], env),
        runCli(['get', key, '--json'], env),
      ]);
      expect(text).toMatchObject({ code: 3, stderr: '' });
      expect(text.stdout).toMatch(new RegExp(`^\\S+Z invalid  ${key}  INVALID_DESCRIPTOR: `));
      expect(text.stdout).toMatch(TOO_DEEP);
      expect(text.stdout).toContain(`session=${session}`);
      expect(json).toMatchObject({ code: 3, stderr: '' });
      expect(JSON.parse(json.stdout)).toMatchObject({
        status: 'invalid',
        key,
        raw: expect.stringMatching(/^\[{100}/),
        session: { id: session },
        error: { code: 'INVALID_DESCRIPTOR', message: expect.stringMatching(TOO_DEEP) },
        issues: [{ code: 'unwritable' }],
      });
    });

    it('list shows a key nested too deeply as invalid and every other key as usual (text and --json)', async () => {
      const prefix = uniquePrefix('deep-list');
      const a = await takeLead(`${prefix}a`, JSON.stringify({ host: 'a' }));
      const deep = await takeLead(`${prefix}deep`, DEEP);
      await takeLead(`${prefix}z`, JSON.stringify({ host: 'z' }));
      const [text, json] = await Promise.all([
        runCli(['list', prefix], env),
        runCli(['list', prefix, '--json'], env),
      ]);
      expect(text).toMatchObject({ code: 0, stderr: '' });
      const rows = rowsOf(text.stdout);
      expect(rows.map((row) => row.slice(0, 2))).toEqual([
        ['KEY', 'STATE'],
        [`${prefix}a`, 'leader'],
        [`${prefix}deep`, 'invalid'],
        [`${prefix}z`, 'leader'],
      ]);
      expect(rows[1]?.[2]).toBe('{"host":"a"}');
      expect(rows[1]?.[4]).toBe(a.slice(0, 8));
      expect(rows[2]?.[2]).toMatch(/^raw="\[{100}/);
      expect(rows[2]?.[2]).toMatch(TOO_DEEP);
      expect(rows[2]?.[4]).toBe(deep.slice(0, 8));
      expect(rows[3]?.[2]).toBe('{"host":"z"}');

      expect(json).toMatchObject({ code: 0, stderr: '' });
      const states = JSON.parse(json.stdout) as Record<string, unknown>[];
      expect(states).toMatchObject([
        { key: `${prefix}a`, status: 'leader', leader: { node: { host: 'a' } } },
        { key: `${prefix}deep`, status: 'invalid', issues: [{ code: 'unwritable' }] },
        { key: `${prefix}z`, status: 'leader', leader: { node: { host: 'z' } } },
      ]);
    });

    it('watch <key> and watch --prefix (text and --json) print a key nested too deeply as invalid and go on', async () => {
      const prefix = uniquePrefix('deep-watch');
      const key = `${prefix}deep`;
      const deep = await takeLead(key, DEEP);
      await takeLead(`${prefix}ok`, JSON.stringify({ host: 'ok' }));
      const keyText = new WatchProcess(['watch', key], env);
      const keyJson = new WatchProcess(['watch', key, '--json'], env);
      const prefixText = new WatchProcess(['watch', '--prefix', prefix], env);
      const prefixJson = new WatchProcess(['watch', '--prefix', prefix, '--json'], env);
      watches.push(keyText, keyJson, prefixText, prefixJson);

      const invalidLine = new RegExp(`^\\S+Z invalid  ${key}  INVALID_DESCRIPTOR: .*session=${deep} `);
      const invalidJson = {
        status: 'invalid',
        key,
        raw: expect.stringMatching(/^\[{100}/),
        error: { code: 'INVALID_DESCRIPTOR', message: expect.stringMatching(TOO_DEEP) },
        issues: [{ code: 'unwritable' }],
      };
      expect(await keyText.nextLine()).toMatch(invalidLine);
      expect(await keyJson.nextJson()).toMatchObject(invalidJson);
      expect(await prefixText.nextLine()).toMatch(invalidLine);
      expect(await prefixText.nextLine()).toMatch(
        new RegExp(`^\\S+Z leader  ${prefix}ok  \\{"host":"ok"\\}`),
      );
      expect(await prefixJson.nextJson()).toMatchObject(invalidJson);
      expect(await prefixJson.nextJson()).toMatchObject({ status: 'leader', key: `${prefix}ok` });

      // Still watching: the next change of the key is printed.
      await put(client, key, JSON.stringify({ host: 'shallow' }));
      expect(await keyJson.nextJson()).toMatchObject({
        status: 'leader',
        leader: { node: { host: 'shallow' } },
      });
      expect(await prefixJson.nextJson()).toMatchObject({ status: 'leader', key });
      for (const watch of [keyText, keyJson, prefixText, prefixJson]) {
        expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
        expect(watch.errors).toBe('');
      }
    });

    it('get on a held value that is not JSON prints the invalid state, not "no leader" or null; exit 3', async () => {
      const key = uniqueKey('plain');
      // As the Go seed's contenders do: the session ID as plain text.
      const session = await createSession(client, { name: 'go-seed' });
      expect(await acquire(client, key, session, session)).toBe(true);
      const [text, json] = await Promise.all([
        runCli(['get', key], env),
        runCli(['get', key, '--json'], env),
      ]);
      expect(text).toMatchObject({ code: 3, stderr: '' });
      expect(text.stdout).toMatch(
        new RegExp(
          `^\\S+Z invalid  ${key}  INVALID_DESCRIPTOR: value cannot be decoded: .*session=${session} node=\\S+\\n$`,
        ),
      );
      expect(text.stdout).not.toContain('no leader');
      expect(json).toMatchObject({ code: 3, stderr: '' });
      const state = JSON.parse(json.stdout) as Record<string, unknown>;
      expect(state).toMatchObject({
        status: 'invalid',
        key,
        raw: session,
        session: { id: session, name: 'go-seed' },
        entry: { lockIndex: '1' },
        error: { code: 'INVALID_DESCRIPTOR', message: expect.stringContaining('cannot be decoded') },
        consul: { index: expect.stringMatching(/^\d+$/) },
      });
      expect(state).not.toHaveProperty('time');
    });

    it('a closed stdout ends get quietly with its exit code: 0 with a leader, 3 without', async () => {
      const held = uniqueKey('epipe-get');
      await takeLead(held, JSON.stringify({ host: 'pipe' }));
      const missing = uniqueKey('epipe-missing');
      const results = await Promise.all([
        runStdoutClosed(['get', held, '--json']),
        runStdoutClosed(['get', missing]),
        runPiped(['get', held], 'true'),
        runPiped(['get', missing, '--json'], 'true'),
      ]);
      expect(results.map(({ code, stderr }) => ({ code, stderr }))).toEqual(
        [0, 3, 0, 3].map((code) => ({ code, stderr: '' })),
      );
    });

    it('list | head -1 over 2,000 keys exits 0 and prints nothing on stderr; so does watch --prefix', async () => {
      const prefix = uniquePrefix('epipe-list');
      await holdMany(prefix, 2000);
      const [table, json, closed, watch] = await Promise.all([
        runPiped(['list', prefix], 'head -1'),
        runPiped(['list', prefix, '--json'], 'head -c 100'),
        runStdoutClosed(['list', prefix]),
        runPiped(['watch', '--prefix', prefix], 'head -1'),
      ]);
      expect(table).toMatchObject({ code: 0, stderr: '' });
      expect(table.stdout).toMatch(/^KEY +STATE +LEADER +CONSUL NODE +SESSION\n$/);
      expect(json).toMatchObject({ code: 0, stderr: '' });
      expect(json.stdout).toMatch(/^\[\{"status":"leader"/);
      expect(closed).toEqual({ code: 0, stderr: '' });
      expect(watch).toMatchObject({ code: 0, stderr: '' });
      expect(watch.stdout).toMatch(new RegExp(`^\\S+Z leader  ${prefix}00000  `));
    });

    it('--version prints the version of the package, exit 0', async () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'packages', 'discovery', 'package.json'), 'utf8')) as {
        version: string;
      };
      expect(await runCli(['--version'], env)).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
      expect(parseCliArgs(['-V'])).toEqual({ kind: 'version' });
      expect(parseCliArgs(['get', 'k', '--version'])).toEqual({ kind: 'version' });
    });

    it('each command --help lists only its own flags; --help lists them all', async () => {
      const [all, get, list, watch] = [helpText(), helpText('get'), helpText('list'), helpText('watch')];
      expect(await runCli(['get', '--help'], env)).toEqual({ code: 0, stdout: get, stderr: '' });
      const common = [
        '--addr',
        '--token',
        '--dc',
        '--consistency',
        '--decode',
        '--json',
        '--help',
        '--version',
      ];
      for (const help of [all, get, list, watch]) {
        for (const flag of common) expect(help).toContain(flag);
      }
      expect(all).toContain('--prefix <prefix>');
      expect(watch).toContain('--prefix <prefix>');
      expect(get).not.toContain('--prefix');
      expect(list).not.toContain('--prefix');
      // --json says what each command prints.
      expect(get).toMatch(/--json +the Leader as JSON/);
      expect(list).toMatch(/--json +one JSON array/);
      expect(watch).toMatch(/--json +one JSON object per line/);
    });

    const TOKENS = ['hunter2\nsecret-a41f', 'hunter2\rsecret-a41f', 'hunter2\u{1F600}secret-a41f'];

    it('a --token that is no HTTP header value is a usage error naming --token, never the token', () => {
      for (const token of TOKENS) {
        for (const args of [
          ['get', 'k', '--token', token],
          ['list', 'p/', `--token=${token}`],
          ['watch', '--prefix', 'p/', '--token', token],
        ]) {
          const parsed = parseCliArgs(args);
          expect(parsed).toMatchObject({ kind: 'usage-error', message: expect.stringContaining('--token') });
          expect(JSON.stringify(parsed)).not.toMatch(/hunter2|secret-a41f/);
        }
      }
    });

    it('... and exits 2 without printing it; a CONSUL_HTTP_TOKEN with a line break exits 2 naming it', async () => {
      const runs = await Promise.all([
        runCli(['get', 'k', '--token', TOKENS[0] as string], env),
        runCli(['watch', 'k', '--json', `--token=${TOKENS[2] as string}`], env),
        runCli(['list', 'p/'], { ...env, CONSUL_HTTP_TOKEN: TOKENS[1] as string }),
      ]);
      runs.forEach((res, i) => {
        expect(res.code).toBe(2);
        expect(res.stdout).toBe('');
        expect(res.stderr).toMatch(
          i < 2 ? /^consul-leader: .*--token/ : /^consul-leader: .*CONSUL_HTTP_TOKEN/,
        );
        expect(res.stderr).not.toMatch(/hunter2|secret-a41f/);
      });
    });

    it('a key the SDK refuses, or a --dc or --addr with a control character, is a usage error naming it', () => {
      for (const key of ['a/../b', 'a//b', 'a/./b', 'a\u0001b']) {
        for (const [args, named] of [
          [['get', key], 'key'],
          [['watch', key], 'key'],
          [['list', `${key}/`], 'prefix'],
          [['watch', '--prefix', `${key}/`], 'prefix'],
        ] as const) {
          expect(parseCliArgs(args)).toEqual({
            kind: 'usage-error',
            message: expect.stringMatching(new RegExp(`^INVALID_OPTION: invalid option ${named} "`)),
          });
        }
      }
      expect(parseCliArgs(['get', 'k', '--dc', 'dc1\nx'])).toMatchObject({
        message: expect.stringMatching(/^INVALID_OPTION: invalid option --dc: /),
      });
      expect(parseCliArgs(['get', 'k', '--addr', '127.0.0.1\n:8500'])).toMatchObject({
        message: expect.stringMatching(/^INVALID_OPTION: invalid option --addr: /),
      });
    });

    it('... and exits 2 (not 1), with the control characters escaped', async () => {
      const runs = await Promise.all([
        runCli(['get', 'a/../b'], env),
        runCli(['list', 'a//b/'], env),
        runCli(['watch', '--prefix', 'a\u0001b/'], env),
        runCli(['get', 'k', '--dc', 'dc1\nx'], env),
      ]);
      for (const res of runs) {
        expect(res.code).toBe(2);
        expect(res.stdout).toBe('');
        expect(res.stderr).toMatch(/^consul-leader: INVALID_OPTION: invalid option /);
        // No raw control character but the line breaks that end the lines.
        expect([...res.stderr].filter((c) => c < ' ' && c !== '\n')).toEqual([]);
      }
    });
  });
});

describe('consul-leader CLI with ACLs (default deny)', () => {
  const MASTER = 'c0ffee00-0000-4000-8000-00000000c1a1';
  const KEY = uniqueKey('acl');
  let agent: ConsulAgent;

  beforeAll(async () => {
    agent = await startAclAgent(MASTER);
    await electWhenReady(agent, MASTER, KEY, 'acl-leader', JSON.stringify({ host: 'acl-host' }));
  });

  afterAll(async () => {
    await agent?.destroy();
  });

  it('get without a token exits 1 with PERMISSION_DENIED, not "no leader"', async () => {
    const res = await runCli(['get', KEY], cleanEnv({ CONSUL_HTTP_ADDR: agent.address }));
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('PERMISSION_DENIED');
    expect(res.stderr).toContain('403');
  });

  it('reads with --token, or with CONSUL_HTTP_TOKEN, and never prints the token', async () => {
    const withFlag = await runCli(['get', KEY, '--json', '--addr', agent.address, '--token', MASTER]);
    expect(withFlag.code).toBe(0);
    expect((JSON.parse(withFlag.stdout) as { node: unknown }).node).toEqual({ host: 'acl-host' });
    expect(withFlag.stdout + withFlag.stderr).not.toContain(MASTER);

    const withEnv = await runCli(
      ['get', KEY],
      cleanEnv({ CONSUL_HTTP_ADDR: agent.address, CONSUL_HTTP_TOKEN: MASTER }),
    );
    expect(withEnv.code).toBe(0);
    expect(withEnv.stdout).toContain('"host":"acl-host"');
    expect(withEnv.stdout + withEnv.stderr).not.toContain(MASTER);
  });

  it('list without a token exits 1 with PERMISSION_DENIED, not an empty table; with one it lists', async () => {
    const prefix = KEY.slice(0, KEY.lastIndexOf('/') + 1);
    const denied = await runCli(['list', prefix], cleanEnv({ CONSUL_HTTP_ADDR: agent.address }));
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toContain('PERMISSION_DENIED');
    const allowed = await runCli(
      ['list', prefix, '--json', '--token', MASTER],
      cleanEnv({ CONSUL_HTTP_ADDR: agent.address }),
    );
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject([
      { key: KEY, status: 'leader', leader: { node: { host: 'acl-host' } } },
    ]);
    expect(allowed.stdout + allowed.stderr).not.toContain(MASTER);
  });

  it('--token overrides CONSUL_HTTP_TOKEN', async () => {
    const wrong = 'not-a-real-token-5e1f';
    const res = await runCli(
      ['get', KEY, '--token', wrong],
      cleanEnv({ CONSUL_HTTP_ADDR: agent.address, CONSUL_HTTP_TOKEN: MASTER }),
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('PERMISSION_DENIED');
    expect(res.stdout + res.stderr).not.toContain(wrong);
    expect(res.stdout + res.stderr).not.toContain(MASTER);
  });
});

describe('consul-leader CLI formatting', () => {
  describe('format (pure)', () => {
    const time = new Date('2026-11-24T23:50:01.123Z');
    const consul = { index: 18446744073709551615n, lastContactMs: 0, knownLeader: true };

    it('writes bigints as decimal strings and errors as { code, message, status }', () => {
      const error = Object.assign(new Error('denied'), { code: 'PERMISSION_DENIED', status: 403 });
      const line = stateJsonLine(
        { status: 'unreachable', key: 'k', error, attempt: 2, retryInMs: 500, lastKnown: null },
        time,
      );
      expect(JSON.parse(line)).toEqual({
        time: '2026-11-24T23:50:01.123Z',
        status: 'unreachable',
        key: 'k',
        error: { code: 'PERMISSION_DENIED', message: 'denied', status: 403 },
        attempt: 2,
        retryInMs: 500,
        lastKnown: null,
      });
      const vacant = stateJsonLine({ status: 'vacant', key: 'k', reason: 'no-session', consul }, time);
      expect(JSON.parse(vacant)).toMatchObject({ consul: { index: '18446744073709551615' } });
    });

    it('human lines show the reason, colour only on request, and no raw control characters', () => {
      const vacant = { status: 'vacant', key: 'k\u001b[2J', reason: 'session-gone', consul } as const;
      expect(stateLine(vacant, time)).toBe(
        '2026-11-24T23:50:01.123Z vacant  k\\u001b[2J  reason=session-gone',
      );
      expect(stateLine(vacant, time, true)).toContain('\u001b[33mvacant\u001b[0m');
      const down = stateLine(
        {
          status: 'unreachable',
          key: 'k',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          attempt: 3,
          retryInMs: 2000,
          lastKnown: null,
        },
        time,
      );
      expect(down).toBe(
        '2026-11-24T23:50:01.123Z unreachable  k  CONSUL_UNREACHABLE: refused  attempt=3 retry-in=2000ms last-known=none',
      );
    });
  });

  describe('table (pure)', () => {
    const now = new Date('2026-11-24T23:50:01.123Z');
    const consul = { index: 42n, lastContactMs: 0, knownLeader: true };
    const session = {
      id: '8c1e2f3a-1111-4000-8000-000000000001',
      name: 'db',
      node: 'db-host-1',
      checks: ['serfHealth'],
      behavior: 'release',
      ttl: '',
      ttlMs: null,
      lockDelayMs: 15_000,
      createIndex: 5n,
      modifyIndex: 5n,
    } as const;
    const leader = (key: string, node: unknown, meta = consul): State => ({
      status: 'leader',
      key,
      leader: { key, node, session, lockIndex: 1n, modifyIndex: 9n, createIndex: 9n, flags: 0n },
      consul: meta,
    });
    const vacant = (key: string, meta = consul): State => ({
      status: 'vacant',
      key,
      reason: 'no-session',
      consul: meta,
    });
    const invalid: State = {
      status: 'invalid',
      key: 'svc/c',
      entry: { key: 'svc/c', lockIndex: 1n, modifyIndex: 10n, createIndex: 10n, flags: 0n },
      session,
      raw: 'not json',
      error: { code: 'INVALID_DESCRIPTOR', message: 'value cannot be decoded: bad' },
      issues: [],
      consul,
    };
    const rows: TableRow[] = [
      { state: leader('svc/a', { host: 'db-1', port: 5432 }) },
      { state: vacant('svc/b') },
      { state: invalid },
    ];

    it('without a width: values in full, columns aligned, no trailing spaces', () => {
      expect(renderTable(rows, { now })).toEqual([
        'KEY    STATE    LEADER                                         CONSUL NODE  SESSION',
        'svc/a  leader   {"host":"db-1","port":5432}                    db-host-1    8c1e2f3a',
        'svc/b  vacant   (no-session)                                   -            -',
        'svc/c  invalid  raw="not json" (value cannot be decoded: bad)  db-host-1    8c1e2f3a',
      ]);
      expect(renderTable([], { now })).toEqual(['KEY  STATE  LEADER  CONSUL NODE  SESSION']);
    });

    it('with a width: the descriptor, then the start of the key, give up cells; no line is wider', () => {
      const long = [
        { state: leader('service/eu-west-1/payments/db/leader', { host: 'x'.repeat(80) }) },
        ...rows,
      ];
      for (const width of [100, 80, 60, 40]) {
        const lines = renderTable(long, { now, width });
        for (const line of lines) expect(Array.from(line).length).toBeLessThanOrEqual(width);
      }
      const [header, first] = renderTable(long, { now, width: 100 });
      expect(header).toMatch(/^KEY +STATE +LEADER +CONSUL NODE {2}SESSION$/);
      expect(first).toMatch(
        /^service\/eu-west-1\/payments\/db\/leader {2}leader {3}\{"host":"x+… {2}db-host-1 {4}8c1e2f3a$/,
      );
      expect(Array.from(first as string)).toHaveLength(100);
      const narrow = renderTable(long, { now, width: 60 })[1] as string;
      expect(narrow).toMatch(/^…\S*\/db\/leader {2}leader {2}/); // the end of the key stays
    });

    describe('a descriptor that cannot be written as JSON (writeState)', () => {
      // Deeper than any stack lets JSON.stringify go, in any test worker.
      const tooDeep = (): unknown => {
        let node: unknown = [];
        for (let i = 0; i < 100_000; i += 1) node = [node];
        return node;
      };
      const deep = leader('svc/deep', tooDeep());
      const nestedTooDeeply = /the descriptor cannot be written as JSON: it is nested too deeply/;

      it('shows the key as invalid, with the reason, in lines, JSON lines, JSON arrays and tables', () => {
        expect(stateLine(deep, now)).toMatch(
          /^\S+Z invalid {2}svc\/deep {2}INVALID_DESCRIPTOR: the descriptor cannot be written as JSON: it is nested too deeply .*session=8c1e2f3a-1111-4000-8000-000000000001 node=db-host-1$/,
        );
        expect(JSON.parse(stateJsonLine(deep, now))).toMatchObject({
          time: now.toISOString(),
          status: 'invalid',
          key: 'svc/deep',
          entry: { lockIndex: '1', modifyIndex: '9' },
          session: { id: session.id },
          error: { code: 'INVALID_DESCRIPTOR', message: expect.stringMatching(nestedTooDeeply) },
          issues: [{ code: 'unwritable', path: [] }],
          consul: { index: '42' },
        });
        const array = JSON.parse(statesJson([vacant('svc/a'), deep, invalid])) as State[];
        expect(array.map((s) => [s.key, s.status])).toEqual([
          ['svc/a', 'vacant'],
          ['svc/deep', 'invalid'],
          ['svc/c', 'invalid'],
        ]);
        const [, row, next] = renderTable([{ state: deep }, { state: vacant('svc/e') }], { now });
        expect(row).toMatch(/^svc\/deep {2}invalid {2}raw="" \(the descriptor cannot be written as JSON: /);
        expect(next).toMatch(/^svc\/e +vacant/);
        // Unreachable: what was last known of it.
        const down: State = {
          status: 'unreachable',
          key: 'svc/deep',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          attempt: 1,
          retryInMs: 250,
          lastKnown: deep as Settled,
        };
        expect(JSON.parse(stateJsonLine(down, now))).toMatchObject({
          status: 'unreachable',
          lastKnown: { status: 'invalid', issues: [{ code: 'unwritable' }] },
        });
        expect(renderTable([{ state: down }], { now })[1]).toMatch(/^svc\/deep {2}unreachable {2}raw="" \(/);
      });

      it('a descriptor that overflows where it is written, deeper in the stack, is invalid by the depth bound', () => {
        // 1,500 levels: JSON.stringify writes it from a shallow stack, but may not from a deep one.
        let nested: unknown = [];
        for (let i = 0; i < 1_500; i += 1) nested = [nested];
        const edge = leader('svc/edge', nested);
        const written = writeState(edge, (state) => {
          if (state.status === 'leader') throw new RangeError('Maximum call stack size exceeded');
          return state;
        });
        expect(written).toMatchObject({
          status: 'invalid',
          error: { message: expect.stringMatching(nestedTooDeeply) },
          issues: [{ code: 'unwritable' }],
        });
        // A shallow descriptor that fails to be written: not the descriptor's fault, not hidden.
        const shallow = leader('svc/shallow', { host: 'db-1' });
        expect(() =>
          writeState(shallow, () => {
            throw new RangeError('Maximum call stack size exceeded');
          }),
        ).toThrow(RangeError);
        // Any other failure is not the descriptor's: it is not hidden.
        expect(() =>
          writeState(vacant('svc/v'), () => {
            throw new Error('not a descriptor');
          }),
        ).toThrow('not a descriptor');
        expect(stateJson(shallow)).toBe(JSON.stringify(shallow, jsonReplacer));
      });
    });

    it('colours only the state, outside the padding; control characters are escaped', () => {
      const [, row] = renderTable([{ state: vacant('k\u001b[2J') }], { now, colour: true });
      expect(row).toBe('k\\u001b[2J  \u001b[33mvacant\u001b[0m  (no-session)  -            -');
    });

    it('SINCE: the age of the last change, ">" when unchanged since the watch started', () => {
      const lines = renderTable(
        [
          { state: vacant('a'), since: new Date(now.getTime() - 65_000), sinceAtLeast: true },
          { state: vacant('b'), since: new Date(now.getTime() - 12_400) },
        ],
        { now, since: true },
      );
      expect(lines.map((line) => line.split(/ {2,}/).at(-1))).toEqual(['SINCE', '>1m05s', '12s']);
    });

    it('formatAge and cutVisible', () => {
      expect([0, 59_999, 65_000, 3_780_000, 2 * 86_400_000 + 4 * 3_600_000].map(formatAge)).toEqual([
        '0s',
        '59s',
        '1m05s',
        '1h03m',
        '2d04h',
      ]);
      expect(cutVisible('abcdef', 6)).toBe('abcdef');
      expect(cutVisible('abcdef', 4)).toBe('abc…');
      expect(cutVisible('ab\u001b[31mcdef\u001b[0m', 4)).toBe('ab\u001b[31mc…\u001b[0m');
    });

    it('the live view: Consul status, the table, cut to the height with how many keys are hidden', () => {
      const many = Array.from({ length: 10 }, (_, i) => ({ state: vacant(`svc/${i}`), since: now }));
      const lines = renderWatchScreen('svc/', { kind: 'ok', meta: consul }, many, {
        now,
        width: 100,
        height: 8,
      });
      expect(lines).toHaveLength(8);
      expect(lines[0]).toBe('consul-leader watch --prefix svc/  2026-11-24T23:50:01.123Z  (Ctrl-C to quit)');
      expect(lines[1]).toBe('Consul: ok  |  10 keys: 10 vacant');
      expect(lines[3]).toMatch(/^KEY +STATE/);
      expect(lines.slice(4, 7).map((line) => line.split(' ')[0])).toEqual(['svc/0', 'svc/1', 'svc/2']);
      expect(lines[7]).toBe('… 7 more keys (a taller terminal, or --json, shows all)');

      const down = renderWatchScreen(
        'svc/',
        {
          kind: 'unreachable',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          since: new Date(now.getTime() - 12_000),
          attempt: 3,
          retryInMs: 2000,
        },
        [],
        { now, width: 100, height: 30 },
      );
      expect(down.slice(1, 3)).toEqual([
        'Consul: unreachable for 12s (attempt 3, next in 2000 ms)  |  0 keys',
        '  CONSUL_UNREACHABLE: refused',
      ]);
    });
  });

  describe('PrefixView (pure)', () => {
    const t = (s: number): Date => new Date(Date.UTC(2026, 10, 24, 23, 50, s));
    const meta = (index: bigint) => ({ index, lastContactMs: 0, knownLeader: true });
    const session = (id: string) => sessionInfo(id, { node: 'n' });
    const held = (key: string, id: string, index: bigint): Settled => ({
      status: 'leader',
      key,
      leader: {
        key,
        node: id,
        session: session(id),
        lockIndex: 1n,
        modifyIndex: index,
        createIndex: index,
        flags: 0n,
      },
      consul: meta(index),
    });
    const free = (key: string, index: bigint): Settled => ({
      status: 'vacant',
      key,
      reason: 'no-session',
      consul: meta(index),
    });
    const map = (...states: State[]): Map<string, State> => new Map(states.map((s) => [s.key, s]));
    const summary = (states: readonly State[]) => states.map((s) => `${s.key}:${s.status}`);

    it('reports changed keys, deleted keys as key-missing, outages on every key, and when states changed', () => {
      const view = new PrefixView(t(0));
      expect(view.status).toEqual({ kind: 'connecting' });
      const a = held('p/a', 's1', 10n);
      const b = free('p/b', 11n);
      expect(summary(view.read(map(b, a), t(1)))).toEqual(['p/a:leader', 'p/b:vacant']);
      expect(view.status).toEqual({ kind: 'ok', meta: meta(11n) });
      expect(view.rows().map((r) => [r.state.key, r.since, r.sinceAtLeast])).toEqual([
        ['p/a', t(0), true],
        ['p/b', t(0), true],
      ]);
      expect(view.read(map(a, b), t(2))).toEqual([]); // nothing new

      const b2 = held('p/b', 's2', 12n);
      expect(summary(view.read(map(a, b2), t(3)))).toEqual(['p/b:leader']);
      expect(view.rows()[1]).toMatchObject({ since: t(3), sinceAtLeast: false });

      // p/a deleted: key-missing, with the newest answer's headers the map has.
      const [missing] = view.read(map(b2), t(4));
      expect(missing).toEqual({ status: 'vacant', key: 'p/a', reason: 'key-missing', consul: meta(12n) });

      // An outage: the SDK lists the keys it knew; the deleted one is unreachable too.
      const error = { code: 'CONSUL_UNREACHABLE', message: 'refused' };
      const down = {
        status: 'unreachable',
        key: 'p/b',
        error,
        attempt: 2,
        retryInMs: 500,
        lastKnown: b2,
      } as const;
      const changed = view.outage(map(down), t(5));
      expect(changed).toEqual([
        { status: 'unreachable', key: 'p/a', error, attempt: 2, retryInMs: 500, lastKnown: missing },
        down,
      ]);
      expect(view.status).toEqual({ kind: 'unreachable', error, since: t(5), attempt: 2, retryInMs: 500 });
      expect(view.outage(map({ ...down, attempt: 3 }), t(6))).toHaveLength(2); // every attempt is new
      expect(view.status).toMatchObject({ since: t(5), attempt: 3 });
      expect(view.rows()[1]).toMatchObject({ since: t(3) }); // an outage does not change a key's state

      // Back, unchanged: the lines say so, but the keys' SINCE stays.
      expect(summary(view.read(map(b2), t(7)))).toEqual(['p/a:vacant', 'p/b:leader']);
      expect(view.rows().map((r) => r.since)).toEqual([t(4), t(3)]);

      // Every key deleted; then an outage the SDK shows as an empty map.
      expect(summary(view.read(map(), t(8)))).toEqual(['p/b:vacant']);
      view.outageWithoutKeys(error, t(9));
      expect(view.status).toEqual({
        kind: 'unreachable',
        error,
        since: t(9),
        attempt: null,
        retryInMs: null,
      });
      expect(view.read(map(), t(10))).toEqual([]);
      expect(view.status.kind).toBe('ok');
    });
  });
});
