/** `consul-leader watch --prefix <prefix>` against a real Consul dev agent, with and without a terminal. */
import { execFileSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { put } from '../support/contender.js';
import { CLI, uniquePrefix, useCliAgent } from '../support/cli.js';

describe('consul-leader CLI', () => {
  const cli = useCliAgent();

  describe('watch --prefix', () => {
    it('--json prints a line per key, then a line per change; SIGINT exits 0', async () => {
      const prefix = uniquePrefix('watch-prefix');
      const a = await cli.takeLead(`${prefix}a/leader`, JSON.stringify({ host: 'a' }), 'prefix-a');
      await put(cli.client, `${prefix}b/leader`, '');
      const watch = cli.watch(['watch', '--prefix', prefix, '--json'], cli.env);

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
      const b = await cli.takeLead(`${prefix}b/leader`, JSON.stringify({ host: 'b' }), 'prefix-b');
      expect(await watch.nextJson()).toMatchObject({
        status: 'leader',
        key: `${prefix}b/leader`,
        leader: { node: { host: 'b' }, session: { id: b, name: 'prefix-b' } },
      });
      // A key deleted while watched: vacant (key-missing), as `watch <key>` says it.
      await cli.client.kv.del(`${prefix}a/leader`);
      expect(await watch.nextJson()).toMatchObject({
        status: 'vacant',
        key: `${prefix}a/leader`,
        reason: 'key-missing',
        consul: { index: expect.stringMatching(/^\d+$/) },
      });
      // A new key.
      await put(cli.client, `${prefix}c/leader`, '');
      expect(await watch.nextJson()).toMatchObject({ status: 'vacant', key: `${prefix}c/leader` });
      expect(await watch.pending()).toEqual([]);

      expect(await watch.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(watch.errors).toBe('');
    });

    it('without a terminal prints the lines of watch <key>, one per changed key; SIGTERM exits 0', async () => {
      const prefix = uniquePrefix('watch-prefix-plain');
      const a = await cli.takeLead(`${prefix}a`, JSON.stringify({ host: 'a', port: 1 }));
      await put(cli.client, `${prefix}b`, '');
      const watch = cli.watch(['watch', '--prefix', prefix], cli.env);
      expect(await watch.nextLine()).toMatch(
        new RegExp(`^\\S+Z leader  ${prefix}a  \\{"host":"a","port":1\\}  session=${a} node=\\S+$`),
      );
      expect(await watch.nextLine()).toMatch(new RegExp(`^\\S+Z vacant  ${prefix}b  reason=no-session$`));
      await cli.takeLead(`${prefix}b`, 'not json');
      const invalid = await watch.nextLine();
      expect(invalid).toMatch(new RegExp(`^\\S+Z invalid  ${prefix}b  INVALID_DESCRIPTOR: `));
      expect(await watch.pending()).toEqual([]);
      expect(watch.raw).not.toContain('\u001b[');
      expect(await watch.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    });

    it('says on stderr that Consul cannot be read when no key is known, and exits 0 on SIGINT', async () => {
      const watch = cli.watch(['watch', '--prefix', uniquePrefix('down'), '--addr', `${cli.agent.host}:1`]);
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
        await cli.takeLead(`${prefix}a`, JSON.stringify({ host: 'tty-a' }));
        await put(cli.client, `${prefix}b`, '');
        // util-linux `script` runs the CLI on a pseudo-terminal; Ctrl-C written to it is a SIGINT.
        const shell = `stty cols 120 rows 20; exec "${process.execPath}" "${CLI}" watch --prefix "${prefix}"`;
        const colourEnv = { ...cli.env, NO_COLOR: '' };
        const watch = cli.watch([shell, '/dev/null'], colourEnv, ['script', '-qec']);
        await watch.until('the first table', (raw) => raw.includes(`${prefix}b`));
        expect(watch.raw.startsWith('\u001b[?1049h')).toBe(true); // the alternate screen
        expect(watch.raw).toContain('\u001b[H'); // drawn from the top-left corner
        expect(watch.raw).toContain('KEY');
        expect(watch.raw).toContain('SINCE');
        expect(watch.raw).toContain('\u001b[32mleader\u001b[0m');
        expect(watch.raw).toContain('\u001b[33mvacant\u001b[0m');
        expect(watch.raw).toMatch(/Consul: ok {2}\| {2}2 keys: 1 leader, 1 vacant/);

        await cli.takeLead(`${prefix}b`, JSON.stringify({ host: 'tty-b' }));
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
});
