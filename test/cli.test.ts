/**
 * The `consul-leader` CLI, as built (`node packages/discovery/dist/cli/main.js`),
 * against a real Consul dev agent.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type Consul from 'consul';
import { type ConsulAgent, startConsulAgent } from '../scripts/consul-agent.js';
import { acquire, consulClient, createSession, release } from './support/contender.js';
import { parseCliArgs } from '../packages/discovery/src/cli/args.js';
import { stateJsonLine, stateLine } from '../packages/discovery/src/cli/format.js';

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
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = cleanEnv()) {
    this.child = spawn(process.execPath, [CLI, ...args], { env });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
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
    ])('%j exits 2 with the usage on stderr', async (args) => {
      const res = await runCli(args, env);
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('Usage:');
      expect(res.stderr).toContain('consul-leader watch <key>');
    });

    it.each([[['--help']], [['-h']], [['get', '--help']], [['watch', 'k', '-h']]])(
      '%j prints the usage with the exit codes and exits 0',
      async (args) => {
        const res = await runCli(args, env);
        expect(res.code).toBe(0);
        expect(res.stdout).toContain('Usage:');
        for (const code of ['0', '1', '2', '3']) expect(res.stdout).toMatch(new RegExp(`^  ${code}  `, 'm'));
      },
    );

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
});

describe('consul-leader CLI with ACLs (default deny)', () => {
  const MASTER = 'c0ffee00-0000-4000-8000-00000000c1a1';
  const KEY = uniqueKey('acl');
  let agent: ConsulAgent;

  beforeAll(async () => {
    agent = await startConsulAgent({
      hcl: `acl {\n enabled = true\n default_policy = "deny"\n tokens {\n master = "${MASTER}"\n }\n}\n`,
    });
    const writer = consulClient(agent.address, MASTER);
    // The master token may need a moment after the leader is elected.
    for (let i = 0; ; i += 1) {
      try {
        const session = await createSession(writer, { name: 'acl-leader' });
        expect(await acquire(writer, KEY, session, JSON.stringify({ host: 'acl-host' }))).toBe(true);
        break;
      } catch (error) {
        if (i > 50) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
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
});
