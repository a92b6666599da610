/**
 * TLS against real Consul agents serving HTTPS only, with certificates made by
 * `consul tls ca create` / `consul tls cert create`: the CLI's TLS variables
 * (CONSUL_HTTP_ADDR https://, CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CLIENT_CERT/KEY,
 * CONSUL_HTTP_SSL_VERIFY, CONSUL_TLS_SERVER_NAME) and the `consul` options; a wrong
 * CA or a missing client certificate is a `tls` unreachable state, never "no leader".
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConsulUnreachableError,
  type LeaderDiscovery,
  type LeaderDiscoveryOptions,
  createLeaderDiscovery,
} from '@consul-leader/discovery';
import { describe as show, record } from './support/recorder.js';
import {
  HTTPS_PORT,
  type TlsAgent,
  type TlsMaterial,
  createTlsMaterial,
  startTlsAgent,
} from './support/tls.js';

const Node = z.object({ host: z.string(), port: z.number().int() });

let tls: TlsMaterial;
/** HTTPS only, no client certificate required. */
let agent: TlsAgent;
/** HTTPS only, `verify_incoming_https = true`. */
let mutual: TlsAgent;
const discoveries: LeaderDiscovery[] = [];
let n = 0;
const uniqueKey = (name: string): string => `tls/${name}-${++n}/leader`;

/** Fast retries, so an error state repeats within the test's deadline. */
function discovery(options: LeaderDiscoveryOptions): LeaderDiscovery {
  const d = createLeaderDiscovery({ retry: { initialDelayMs: 100, maxDelayMs: 500 }, ...options });
  discoveries.push(d);
  return d;
}

beforeAll(async () => {
  tls = createTlsMaterial();
  [agent, mutual] = await Promise.all([startTlsAgent(tls), startTlsAgent(tls, { mutual: true })]);
});

afterAll(async () => {
  for (const d of discoveries) d.close();
  await Promise.all([agent?.destroy(), mutual?.destroy()]);
  tls?.remove();
});

/**
 * The discovery reads the key over TLS (vacant: key-missing), then sees a contender
 * acquire it, in `watch()`, `leader()` and `current()`. Returns the live recorders.
 */
async function followsAcquire(d: LeaderDiscovery, target: TlsAgent, name: string) {
  const key = uniqueKey(name);
  const states = record(d.watch(key, { schema: Node }));
  const leaders = record(d.leader(key, { schema: Node }));
  const vacant = await states.next((s) => s.status !== 'unreachable' || s.attempt >= 3);
  expect(vacant, vacant.status === 'unreachable' ? vacant.error.message : show(vacant)).toMatchObject({
    status: 'vacant',
    reason: 'key-missing',
  });
  await leaders.next((l) => l === null);

  const host = `${name}.example`;
  const session = await target.campaign(key, { host, port: 5432 });
  const leader = await leaders.next((l) => l !== null);
  expect(leader?.node).toEqual({ host, port: 5432 });
  expect(leader?.session.id).toBe(session);
  const state = await states.next((s) => s.status === 'leader');
  expect(state.status === 'leader' && state.leader.session.id).toBe(session);

  const now = await d.current(key, { schema: Node });
  expect(now?.node).toEqual({ host, port: 5432 });
  expect(now?.session.id).toBe(session);
  expect(states.values.some((s) => s.status === 'unreachable')).toBe(false);
  return { key, states, leaders };
}

/** Waits for a repeated `unreachable` state; checks nothing else was emitted and `current()` rejects alike. */
async function unreachable(d: LeaderDiscovery) {
  const key = uniqueKey('unreachable');
  const states = record(d.watch(key, { schema: Node }));
  const leaders = record(d.leader(key, { schema: Node }));
  const state = await states.next((s) => s.status === 'unreachable' && s.attempt >= 2);
  if (state.status !== 'unreachable') throw new Error('unreachable');
  expect(states.values.every((s) => s.status === 'unreachable')).toBe(true);
  expect(leaders.values).toEqual([]);
  expect(state.lastKnown).toBeNull();
  const rejected: unknown = await d.current(key).then(
    (value) => ({ resolved: value }),
    (error: unknown) => error,
  );
  states.unsubscribe();
  leaders.unsubscribe();
  expect(rejected).toBeInstanceOf(ConsulUnreachableError);
  return { state, error: state.error, rejected };
}

/** The Node socket error code under an SDK error (its `cause` is node-consul's error). */
function socketCode(error: unknown): unknown {
  return ((error as { cause?: { code?: unknown } }).cause ?? {}).code;
}

/** The error a plain `https.get` (Node's global agent, no CA given) meets. */
function plainHttpsGetError(url: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    https
      .get(url, (res) => {
        res.resume();
        resolve(undefined);
      })
      .on('error', resolve);
  });
}

const CERT_ERROR =
  /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/;

describe('CONSUL_* environment', () => {
  it('1. CONSUL_HTTP_ADDR=https://127.0.0.X:8501 with CONSUL_CACERT follows the leader', async () => {
    const d = discovery({
      env: { CONSUL_HTTP_ADDR: `https://${agent.host}:${HTTPS_PORT}`, CONSUL_CACERT: tls.caPath },
    });
    const { states, leaders } = await followsAcquire(d, agent, 'https-addr');
    states.unsubscribe();
    leaders.unsubscribe();
  });

  it('2. CONSUL_HTTP_ADDR=127.0.0.X:8501 with CONSUL_HTTP_SSL=true and CONSUL_CACERT follows the leader', async () => {
    const d = discovery({
      env: {
        CONSUL_HTTP_ADDR: `${agent.host}:${HTTPS_PORT}`,
        CONSUL_HTTP_SSL: 'true',
        CONSUL_CACERT: tls.caPath,
      },
    });
    const { states, leaders } = await followsAcquire(d, agent, 'ssl-flag');
    states.unsubscribe();
    leaders.unsubscribe();
  });

  it('3. CONSUL_HTTP_SSL_VERIFY=false works without a CA, for this client only: the process still checks certificates', async () => {
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    const url = `https://${agent.host}:${HTTPS_PORT}/v1/status/leader`;
    const d = discovery({
      env: { CONSUL_HTTP_ADDR: `https://${agent.host}:${HTTPS_PORT}`, CONSUL_HTTP_SSL_VERIFY: 'false' },
    });
    // Still subscribed (a blocking query in flight) while the checks below run.
    const { states, leaders } = await followsAcquire(d, agent, 'no-verify');

    expect(process.env.NODE_TLS_REJECT_UNAUTHORIZED).toBe(before);
    expect(https.globalAgent.options.rejectUnauthorized).not.toBe(false);

    const getError = await plainHttpsGetError(url);
    expect(getError?.code, String(getError)).toMatch(CERT_ERROR);

    const fetchError: unknown = await fetch(url).then(
      (res) => ({ status: res.status }),
      (error: unknown) => error,
    );
    expect(fetchError).toBeInstanceOf(TypeError);
    expect(((fetchError as Error).cause as { code?: string } | undefined)?.code).toMatch(CERT_ERROR);

    // Another SDK client in the same process, without the CA and with checks on, still fails.
    const strict = await unreachable(
      discovery({ env: { CONSUL_HTTP_ADDR: `https://${agent.host}:${HTTPS_PORT}` } }),
    );
    expect(strict.error, strict.error.message).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });

    // And the unverified one kept following throughout.
    expect(states.values.at(-1)?.status).toBe('leader');
    expect(states.values.some((s) => s.status === 'unreachable')).toBe(false);
    expect(leaders.values.at(-1)?.node.host).toBe('no-verify.example');
    states.unsubscribe();
    leaders.unsubscribe();
  });

  it('4. a wrong CA is an unreachable state with reason "tls", and current() rejects with the same', async () => {
    const d = discovery({
      env: { CONSUL_HTTP_ADDR: `https://${agent.host}:${HTTPS_PORT}`, CONSUL_CACERT: tls.otherCaPath },
    });
    const { state, error, rejected } = await unreachable(d);
    expect(error, `${error.message} (socket code ${String(socketCode(error))})`).toMatchObject({
      code: 'CONSUL_UNREACHABLE',
      reason: 'tls',
    });
    expect(socketCode(error)).toMatch(CERT_ERROR);
    expect(error.message).toMatch(/\(tls\)/);
    expect(state.retryInMs).toBeGreaterThan(0);
    expect(rejected).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });
  });

  it('5a. mutual TLS without a client certificate is an unreachable state with reason "tls"', async () => {
    const d = discovery({
      env: { CONSUL_HTTP_ADDR: `https://${mutual.host}:${HTTPS_PORT}`, CONSUL_CACERT: tls.caPath },
    });
    const { error, rejected } = await unreachable(d);
    // Node sees the server's handshake alert: ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE with Consul 1.8
    // (TLS 1.2); a TLS 1.3 server would send ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED.
    expect(error, `${error.message} (socket code ${String(socketCode(error))})`).toMatchObject({
      code: 'CONSUL_UNREACHABLE',
      reason: 'tls',
    });
    expect(socketCode(error)).toMatch(/^ERR_SSL_/);
    expect(rejected).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });
  });

  it('5b. mutual TLS with CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY follows the leader', async () => {
    const d = discovery({
      env: {
        CONSUL_HTTP_ADDR: `https://${mutual.host}:${HTTPS_PORT}`,
        CONSUL_CACERT: tls.caPath,
        CONSUL_CLIENT_CERT: tls.client.certPath,
        CONSUL_CLIENT_KEY: tls.client.keyPath,
      },
    });
    const { states, leaders } = await followsAcquire(d, mutual, 'client-cert');
    states.unsubscribe();
    leaders.unsubscribe();
  });
});

describe('consul options', () => {
  it('6. { host, port: 8501, secure: true, ca } follows the leader, with no CONSUL_* variables', async () => {
    const d = discovery({
      consul: { host: agent.host, port: HTTPS_PORT, secure: true, ca: tls.caPem },
      env: {},
    });
    const { states, leaders } = await followsAcquire(d, agent, 'options');
    states.unsubscribe();
    leaders.unsubscribe();
  });

  it('6b. { ..., cert, key } follows the leader on the mutual-TLS agent; the address and TLS come from the options alone', async () => {
    const d = discovery({
      consul: {
        host: mutual.host,
        port: HTTPS_PORT,
        secure: true,
        ca: [tls.caPem],
        cert: tls.client.cert,
        key: tls.client.key,
      },
      // Ignored when `consul` is given: they would point elsewhere and distrust the agent.
      env: { CONSUL_HTTP_ADDR: 'http://127.0.0.1:1', CONSUL_CACERT: tls.otherCaPath },
    });
    const { states, leaders } = await followsAcquire(d, mutual, 'options-mtls');
    states.unsubscribe();
    leaders.unsubscribe();
  });

  it('6c. { secure: true } with the wrong CA in `ca` is an unreachable state with reason "tls"', async () => {
    const d = discovery({ consul: { host: agent.host, port: HTTPS_PORT, secure: true, ca: tls.otherCaPem } });
    const { error, rejected } = await unreachable(d);
    expect(error).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });
    expect(rejected).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });
  });
});

describe('CONSUL_TLS_SERVER_NAME', () => {
  it('CONSUL_TLS_SERVER_NAME is the name checked against the certificate', async () => {
    const addr = `https://${mutual.host}:${HTTPS_PORT}`;
    const common = {
      CONSUL_HTTP_ADDR: addr,
      CONSUL_CACERT: tls.caPath,
      CONSUL_CLIENT_CERT: tls.client.certPath,
      CONSUL_CLIENT_KEY: tls.client.keyPath,
    };
    // The server certificate is valid for server.dc1.consul.
    const named = discovery({ env: { ...common, CONSUL_TLS_SERVER_NAME: 'server.dc1.consul' } });
    const { states, leaders } = await followsAcquire(named, mutual, 'server-name');
    states.unsubscribe();
    leaders.unsubscribe();

    const wrong = discovery({ env: { ...common, CONSUL_TLS_SERVER_NAME: 'server.dc2.consul' } });
    const { error, rejected } = await unreachable(wrong);
    expect(error, `${error.message} (socket code ${String(socketCode(error))})`).toMatchObject({
      code: 'CONSUL_UNREACHABLE',
      reason: 'tls',
    });
    expect(socketCode(error)).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(rejected).toMatchObject({ code: 'CONSUL_UNREACHABLE', reason: 'tls' });
  });
});
