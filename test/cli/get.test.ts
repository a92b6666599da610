/** `consul-leader get <key>` against a real Consul dev agent. */
import { describe, it, expect } from 'vitest';
import { release } from '../support/contender.js';
import { cleanEnv, runCli, uniqueKey, useCliAgent } from '../support/cli.js';

describe('consul-leader CLI', () => {
  const cli = useCliAgent();

  describe('get', () => {
    it('exits 3 with a "no leader" line when the key is missing', async () => {
      const key = uniqueKey('missing');
      const human = await runCli(['get', key], cli.env);
      expect(human.code).toBe(3);
      expect(human.stdout).toContain('no leader');
      expect(human.stdout).toContain(key);

      const json = await runCli(['get', key, '--json'], cli.env);
      expect(json.code).toBe(3);
      expect(JSON.parse(json.stdout)).toBeNull();
    });

    it('exits 0 and prints the leader as JSON after an acquire', async () => {
      const key = uniqueKey('held');
      const session = await cli.takeLead(key, JSON.stringify({ host: '10.0.0.7', port: 5432 }), 'db-primary');
      const res = await runCli(['get', key, '--json'], cli.env);
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
      const session = await cli.takeLead(key, JSON.stringify({ host: 'a', port: 1 }));
      const res = await runCli(['get', key], cli.env);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(
        new RegExp(`^\\S+Z leader  ${key}  \\{"host":"a","port":1\\}  session=${session} node=\\S+\\n$`),
      );
      expect(res.stdout).not.toContain('\u001b[');
    });

    it('decodes the value as text with --decode text', async () => {
      const key = uniqueKey('text');
      await cli.takeLead(key, 'db-1.internal:5432');
      const text = await runCli(['get', key, '--json', '--decode', 'text'], cli.env);
      expect(text.code).toBe(0);
      expect((JSON.parse(text.stdout) as { node: unknown }).node).toBe('db-1.internal:5432');

      // The same value is not JSON: with the default decoding there is no leader to route to.
      const json = await runCli(['get', key, '--json'], cli.env);
      expect(json.code).toBe(3);
    });

    it('exits 3 after the leader releases the key', async () => {
      const key = uniqueKey('released');
      const session = await cli.takeLead(key, '{"host":"b"}');
      expect((await runCli(['get', key], cli.env)).code).toBe(0);
      expect(await release(cli.client, key, session)).toBe(true);
      expect((await runCli(['get', key], cli.env)).code).toBe(3);
    });

    it('--addr and --token override the environment, and the token is never printed', async () => {
      const key = uniqueKey('addr');
      await cli.takeLead(key, '{"host":"c"}');
      const token = 'secret-token-3b0e1c5a';
      const res = await runCli(
        ['get', key, '--addr', `http://${cli.agent.address}`, '--token', token, '--consistency', 'stale'],
        cleanEnv({ CONSUL_HTTP_ADDR: `${cli.agent.host}:1` }),
      );
      expect(res.code).toBe(0);
      expect(res.stdout + res.stderr).not.toContain(token);
    });

    it('exits 1 with CONSUL_UNREACHABLE on stderr when --addr points at a closed port', async () => {
      const token = 'secret-token-9f2d';
      const res = await runCli(
        ['get', uniqueKey('closed'), '--addr', `${cli.agent.host}:1`, '--token', token],
        cli.env,
      );
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('CONSUL_UNREACHABLE');
      expect(res.stderr).not.toContain(token);
    });
  });
});
