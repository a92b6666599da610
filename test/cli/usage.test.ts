/**
 * Arguments, help, --version and exit codes of `consul-leader`: what it decides before it reads
 * Consul, so no agent runs here. CONSUL_HTTP_ADDR is a closed port: a command that went on to
 * read Consul would fail there (exit 1, or a watch that never ends), never exit 0 or 2 as expected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect, beforeAll } from 'vitest';
import { helpText, parseCliArgs } from '../../packages/discovery/src/cli/args.js';
import { ROOT, cleanEnv, requireBuiltCli, runCli } from '../support/cli.js';

describe('consul-leader CLI', () => {
  const env = cleanEnv({ CONSUL_HTTP_ADDR: '127.0.0.1:1' });

  beforeAll(requireBuiltCli);

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
  });
});
