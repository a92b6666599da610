/** `consul-leader` against a Consul agent with ACLs on and default deny. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { ConsulAgent } from '../../scripts/consul-agent.js';
import { electWhenReady, startAclAgent } from '../support/acl.js';
import { cleanEnv, requireBuiltCli, runCli, uniqueKey } from '../support/cli.js';

describe('consul-leader CLI with ACLs (default deny)', () => {
  const MASTER = 'c0ffee00-0000-4000-8000-00000000c1a1';
  const KEY = uniqueKey('acl');
  let agent: ConsulAgent;

  beforeAll(async () => {
    requireBuiltCli();
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
