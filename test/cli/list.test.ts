/** `consul-leader list <prefix>` against a real Consul dev agent. */
import { describe, it, expect } from 'vitest';
import { acquire, put } from '../support/contender.js';
import { rowsOf, runCli, uniquePrefix, useCliAgent } from '../support/cli.js';

describe('consul-leader CLI', () => {
  const cli = useCliAgent();

  describe('list', () => {
    /** Two held keys, a vacant one and one holding an invalid value. */
    const fleet = async (prefix: string): Promise<{ a: string; b: string }> => {
      const a = await cli.takeLead(`${prefix}a/leader`, JSON.stringify({ host: 'a', port: 1 }), 'fleet-a');
      const b = await cli.takeLead(`${prefix}b/leader`, JSON.stringify({ host: 'b', port: 2 }), 'fleet-b');
      await put(cli.client, `${prefix}c/leader`, '');
      expect(await acquire(cli.client, `${prefix}d/leader`, b, 'not json')).toBe(true);
      return { a, b };
    };

    it('prints one row per key, sorted, with the leader, its Consul node and session', async () => {
      const prefix = uniquePrefix('list');
      const { a, b } = await fleet(prefix);
      const res = await runCli(['list', prefix], cli.env);
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
      const res = await runCli(['list', prefix, '--json'], cli.env);
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
      await cli.takeLead(`${prefix}x`, 'db-1.internal:5432');
      const res = await runCli(['list', prefix, '--json', '--decode', 'text'], cli.env);
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject([
        { status: 'leader', leader: { node: 'db-1.internal:5432' } },
      ]);
    });

    it('exits 0 with an empty table, or [], on a prefix without keys', async () => {
      const prefix = uniquePrefix('list-empty');
      const table = await runCli(['list', prefix], cli.env);
      expect(table).toEqual({ code: 0, stdout: 'KEY  STATE  LEADER  CONSUL NODE  SESSION\n', stderr: '' });
      const json = await runCli(['list', prefix, '--json'], cli.env);
      expect(json).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    });

    it('exits 1 with CONSUL_UNREACHABLE on stderr when --addr points at a closed port', async () => {
      for (const extra of [[], ['--json']]) {
        const res = await runCli(
          ['list', uniquePrefix('list-closed'), '--addr', `${cli.agent.host}:1`, ...extra],
          cli.env,
        );
        expect(res.code).toBe(1);
        expect(res.stdout).toBe('');
        expect(res.stderr).toMatch(/^consul-leader: CONSUL_UNREACHABLE: .*refused/);
      }
    });
  });
});
