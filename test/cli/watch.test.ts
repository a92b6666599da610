/** `consul-leader watch <key>` against a real Consul dev agent. */
import { describe, it, expect } from 'vitest';
import { release } from '../support/contender.js';
import { uniqueKey, useCliAgent } from '../support/cli.js';

describe('consul-leader CLI', () => {
  const cli = useCliAgent();

  describe('watch', () => {
    it('--json prints vacant, then the leader after an acquire, then vacant after the release; SIGINT exits 0', async () => {
      const key = uniqueKey('watch');
      const watch = cli.watch(['watch', key, '--json'], cli.env);

      const first = await watch.nextJson();
      expect(first).toMatchObject({ status: 'vacant', key, reason: 'key-missing' });
      expect(new Date(first.time as string).toISOString()).toBe(first.time);
      expect((first.consul as { index: unknown }).index).toMatch(/^\d+$/);

      const session = await cli.takeLead(key, JSON.stringify({ host: 'w', port: 7 }), 'watcher-test');
      const second = await watch.nextJson();
      expect(second).toMatchObject({
        status: 'leader',
        key,
        leader: { key, node: { host: 'w', port: 7 }, session: { id: session, name: 'watcher-test' } },
      });
      expect((second.leader as { lockIndex: unknown }).lockIndex).toBe('1');

      expect(await release(cli.client, key, session)).toBe(true);
      const third = await watch.nextJson();
      expect(third).toMatchObject({ status: 'vacant', key, reason: 'no-session' });

      const exit = await watch.stop('SIGINT');
      expect(exit).toEqual({ code: 0, signal: null });
    });

    it('prints human lines without --json and exits 0 on SIGTERM', async () => {
      const key = uniqueKey('watch-human');
      const watch = cli.watch(['watch', key], cli.env);
      expect(await watch.nextLine()).toMatch(new RegExp(`^\\S+Z vacant  ${key}  reason=key-missing$`));
      await cli.takeLead(key, 'not json');
      const invalid = await watch.nextLine();
      expect(invalid).toMatch(new RegExp(`^\\S+Z invalid  ${key}  INVALID_DESCRIPTOR: `));
      expect(invalid).toContain('session=');
      expect(await watch.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    });

    it('reports unreachable states with the error code, attempt and retry delay', async () => {
      const watch = cli.watch(['watch', uniqueKey('watch-down'), '--json', '--addr', `${cli.agent.host}:1`]);
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
});
