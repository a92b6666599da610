/**
 * The diagnostics channels (issue #16) against a real Consul agent, with the counting proxy
 * between the SDK and the agent: a `consul-leader:request` subscriber sees every request
 * the proxy sees, with the kind, key, index and status it had; no context holds the token;
 * `consul-leader:state` publishes each state a followed key changes to.
 */
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { bigintReplacer } from '@consul-leader/types';
import { createLeaderDiscovery } from '@consul-leader/discovery';
import { useAgent } from './support/agent.js';
import type { ProxiedRequest } from './support/proxy.js';
import { acquire, createSession, release } from './support/contender.js';
import { until } from './support/recorder.js';

interface RequestContext {
  kind: string;
  key: string;
  blocking: boolean;
  index: bigint;
  statusCode?: number;
  resultIndex?: bigint;
  error?: Error;
}

const TOKEN = 'b1f5c3a0-7c1e-4c9a-9d7e-0123456789ab';

const env = useAgent({ proxy: true });

/** The kind of read a request the proxy saw was. */
function kindOf(req: ProxiedRequest): string {
  if (req.path.startsWith('/v1/session/info/')) return 'session_info';
  if (req.path.startsWith('/v1/session/list')) return 'session_list';
  if (req.query.has('recurse')) return 'kv_recurse';
  if (req.query.has('keys')) return 'kv_keys';
  return 'kv';
}

describe('diagnostics channels', () => {
  it('consul-leader:request sees every request the proxy sees, without the token; consul-leader:state each change', async () => {
    const ended: RequestContext[] = [];
    const started: RequestContext[] = [];
    const handlers = {
      start: (ctx: unknown) => void started.push(ctx as RequestContext),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: (ctx: unknown) => void ended.push(ctx as RequestContext),
      error: () => undefined,
    };
    const states: Array<{ key: string; state: { status: string } }> = [];
    const onState = (message: unknown): void => void states.push(message as (typeof states)[number]);
    const requests = diagnostics.tracingChannel('consul-leader:request');
    requests.subscribe(handlers);
    diagnostics.subscribe('consul-leader:state', onState);

    const key = `channels/${Date.now()}/leader`;
    const discovery = createLeaderDiscovery({
      consul: { host: env.proxy.host, port: env.proxy.port },
      token: TOKEN,
      wait: '2s',
    });
    const before = env.proxy.requests.length;
    try {
      const seen: Array<string | null> = [];
      const subscription = discovery.leader(key).subscribe((leader) => seen.push(leader?.session.id ?? null));
      await until('the first answer', () => seen.length === 1);
      const session = await createSession(env.consul);
      await acquire(env.consul, key, session, '{"host":"10.0.0.1"}');
      await until('the leader', () => seen.at(-1) === session);
      await release(env.consul, key, session);
      await until('vacant again', () => seen.at(-1) === null);
      await discovery.current(key);
      subscription.unsubscribe();
      await until('every request ended', () => ended.length === started.length);
    } finally {
      discovery.close();
      requests.unsubscribe(handlers);
      diagnostics.unsubscribe('consul-leader:state', onState);
    }

    // Every request the proxy answered has its context, with the same kind, key, index and status.
    const proxied = env.proxy.requests.slice(before).filter((r) => r.status !== undefined);
    // In the order they were sent (the contexts are completed in place at their end).
    expect(new Set(ended)).toEqual(new Set(started));
    const answered = started.filter((ctx) => ctx.statusCode !== undefined);
    expect(answered.map((ctx) => ctx.kind)).toEqual(proxied.map(kindOf));
    expect(answered.map((ctx) => ctx.statusCode)).toEqual(proxied.map((r) => r.status));
    expect(answered.map((ctx) => String(ctx.index))).toEqual(proxied.map((r) => r.query.get('index') ?? '0'));
    expect(answered.map((ctx) => ctx.blocking)).toEqual(proxied.map((r) => r.query.has('index')));
    expect(
      answered.map((ctx) => (ctx.resultIndex === undefined ? undefined : String(ctx.resultIndex))),
    ).toEqual(proxied.map((r) => r.index));
    expect(new Set(answered.filter((ctx) => ctx.kind === 'kv').map((ctx) => ctx.key))).toEqual(
      new Set([key]),
    );
    expect(answered.some((ctx) => ctx.statusCode === 404)).toBe(true);
    // The blocking read in flight at unsubscribe ended aborted, with no status.
    expect(
      ended.filter((ctx) => ctx.statusCode === undefined).every((ctx) => ctx.error?.name === 'AbortError'),
    ).toBe(true);
    // The token went to Consul in the header, and appears in no context.
    expect(proxied.every((r) => r.headers['x-consul-token'] === TOKEN)).toBe(true);
    expect(JSON.stringify([started, ended], bigintReplacer)).not.toContain(TOKEN);
    for (const ctx of ended) expect(String(ctx.error?.message ?? '')).not.toContain(TOKEN);

    // The key's states as watch() would emit them: vacant, leader, vacant.
    expect(states.filter((s) => s.key === key).map((s) => s.state.status)).toEqual([
      'vacant',
      'leader',
      'vacant',
    ]);
  });

  it('consul-leader:state publishes the states of the keys of a followed prefix as they change', async () => {
    const messages: Array<{ key: string; state: { status: string } }> = [];
    const onState = (message: unknown): void => void messages.push(message as (typeof messages)[number]);
    diagnostics.subscribe('consul-leader:state', onState);
    const prefix = `channels-prefix/${Date.now()}/`;
    const discovery = createLeaderDiscovery({ consul: { host: env.agent.host, port: env.agent.port } });
    try {
      const seen: number[] = [];
      // Two pipelines of the same prefix: each key's state is published once, not once per pipeline.
      const a = discovery.leaders(prefix).subscribe((leaders) => seen.push(leaders.size));
      const b = discovery.watchPrefix(prefix).subscribe(() => undefined);
      const session = await createSession(env.consul);
      await acquire(env.consul, `${prefix}a`, session, '{"n":1}');
      await until('a leads', () => seen.at(-1) === 1);
      await acquire(env.consul, `${prefix}b`, session, '{"n":2}');
      await until('b leads', () => seen.at(-1) === 2);
      await release(env.consul, `${prefix}a`, session);
      await until('a is vacant', () => seen.at(-1) === 1);
      a.unsubscribe();
      b.unsubscribe();
    } finally {
      discovery.close();
      diagnostics.unsubscribe('consul-leader:state', onState);
    }
    const of = (key: string): string[] => messages.filter((m) => m.key === key).map((m) => m.state.status);
    expect(of(`${prefix}a`)).toEqual(['leader', 'vacant']);
    expect(of(`${prefix}b`)).toEqual(['leader']);
  });

  it('nothing is published, and nothing breaks, while no one subscribes', async () => {
    expect(diagnostics.tracingChannel('consul-leader:request').hasSubscribers).toBe(false);
    const discovery = createLeaderDiscovery({ consul: { host: env.agent.host, port: env.agent.port } });
    try {
      expect(await discovery.current(`channels/${Date.now()}/none`)).toBeNull();
    } finally {
      discovery.close();
    }
  });
});
