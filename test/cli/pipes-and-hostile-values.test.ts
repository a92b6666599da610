/**
 * Issue #12 at the CLI, against a real Consul dev agent: values nested too deeply to write as JSON,
 * values that are not JSON, stdout closed early, and tokens, keys and options Consul cannot take.
 */
import { describe, it, expect } from 'vitest';
import { parseCliArgs } from '../../packages/discovery/src/cli/args.js';
import { acquire, createSession, put } from '../support/contender.js';
import {
  rowsOf,
  runCli,
  runPiped,
  runStdoutClosed,
  uniqueKey,
  uniquePrefix,
  useCliAgent,
} from '../support/cli.js';

describe('consul-leader CLI', () => {
  const cli = useCliAgent();

  // Issue #12: any value a leader key can hold, any closed pipe, any bad argument.
  describe('any value, any closed pipe (issue #12)', () => {
    /** 6 KB of JSON nested 3,000 deep: decodable, but too deep for JSON.stringify with a replacer. */
    const DEEP = '['.repeat(3000) + ']'.repeat(3000);
    const TOO_DEEP = /the descriptor cannot be written as JSON: it is nested too deeply/;

    /** Every key under the prefix held by one session, in transactions of 64 (Consul's limit). */
    const holdMany = async (prefix: string, count: number): Promise<void> => {
      const session = await createSession(cli.client, { name: 'many' });
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
          fetch(`http://${cli.agent.address}/v1/txn`, {
            method: 'PUT',
            body: JSON.stringify(ops.slice(i, i + 64)),
          }).then(async (res) => {
            if (res.status !== 200) throw new Error(`txn: ${res.status} ${await res.text()}`);
          }),
        );
      }
      await Promise.all(batches);
    };

    it('get on a value nested too deeply prints it invalid with the reason (text and --json), exit 3', async () => {
      const key = uniqueKey('deep-get');
      const session = await cli.takeLead(key, DEEP);
      const [text, json] = await Promise.all([
        runCli(['get', key], cli.env),
        runCli(['get', key, '--json'], cli.env),
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
      const a = await cli.takeLead(`${prefix}a`, JSON.stringify({ host: 'a' }));
      const deep = await cli.takeLead(`${prefix}deep`, DEEP);
      await cli.takeLead(`${prefix}z`, JSON.stringify({ host: 'z' }));
      const [text, json] = await Promise.all([
        runCli(['list', prefix], cli.env),
        runCli(['list', prefix, '--json'], cli.env),
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
      const deep = await cli.takeLead(key, DEEP);
      await cli.takeLead(`${prefix}ok`, JSON.stringify({ host: 'ok' }));
      const keyText = cli.watch(['watch', key], cli.env);
      const keyJson = cli.watch(['watch', key, '--json'], cli.env);
      const prefixText = cli.watch(['watch', '--prefix', prefix], cli.env);
      const prefixJson = cli.watch(['watch', '--prefix', prefix, '--json'], cli.env);

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
      await put(cli.client, key, JSON.stringify({ host: 'shallow' }));
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
      const session = await createSession(cli.client, { name: 'go-seed' });
      expect(await acquire(cli.client, key, session, session)).toBe(true);
      const [text, json] = await Promise.all([
        runCli(['get', key], cli.env),
        runCli(['get', key, '--json'], cli.env),
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
      await cli.takeLead(held, JSON.stringify({ host: 'pipe' }));
      const missing = uniqueKey('epipe-missing');
      const results = await Promise.all([
        runStdoutClosed(['get', held, '--json'], cli.env),
        runStdoutClosed(['get', missing], cli.env),
        runPiped(['get', held], 'true', cli.env),
        runPiped(['get', missing, '--json'], 'true', cli.env),
      ]);
      expect(results.map(({ code, stderr }) => ({ code, stderr }))).toEqual(
        [0, 3, 0, 3].map((code) => ({ code, stderr: '' })),
      );
    });

    it('list | head -1 over 2,000 keys exits 0 and prints nothing on stderr; so does watch --prefix', async () => {
      const prefix = uniquePrefix('epipe-list');
      await holdMany(prefix, 2000);
      const [table, json, closed, watch] = await Promise.all([
        runPiped(['list', prefix], 'head -1', cli.env),
        runPiped(['list', prefix, '--json'], 'head -c 100', cli.env),
        runStdoutClosed(['list', prefix], cli.env),
        runPiped(['watch', '--prefix', prefix], 'head -1', cli.env),
      ]);
      expect(table).toMatchObject({ code: 0, stderr: '' });
      expect(table.stdout).toMatch(/^KEY +STATE +LEADER +CONSUL NODE +SESSION\n$/);
      expect(json).toMatchObject({ code: 0, stderr: '' });
      expect(json.stdout).toMatch(/^\[\{"status":"leader"/);
      expect(closed).toEqual({ code: 0, stderr: '' });
      expect(watch).toMatchObject({ code: 0, stderr: '' });
      expect(watch.stdout).toMatch(new RegExp(`^\\S+Z leader  ${prefix}00000  `));
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
        runCli(['get', 'k', '--token', TOKENS[0] as string], cli.env),
        runCli(['watch', 'k', '--json', `--token=${TOKENS[2] as string}`], cli.env),
        runCli(['list', 'p/'], { ...cli.env, CONSUL_HTTP_TOKEN: TOKENS[1] as string }),
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
        runCli(['get', 'a/../b'], cli.env),
        runCli(['list', 'a//b/'], cli.env),
        runCli(['watch', '--prefix', 'a\u0001b/'], cli.env),
        runCli(['get', 'k', '--dc', 'dc1\nx'], cli.env),
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
