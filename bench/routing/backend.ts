/**
 * A backend of the routing case, in a process of its own (bench/child.ts, plain JavaScript):
 * a minimal `node:http` server answering a small body, campaigning for a Consul key on bare
 * `http` (bench/consul-http.ts) the way Consul's leader-election guide describes. It answers
 * 200 only while it leads and 421 (Misdirected Request) otherwise.
 *
 * - campaign: a session (TTL, `Behavior: release`, lock-delay) renewed every TTL/2; a blocking
 *   read of the key; `PUT ?acquire` as soon as the key has no session, again every
 *   `RETRY_MS` while Consul refuses (a lock-delay);
 * - step-down: 421 from the command's receipt, release the key, destroy the session, campaign
 *   again after `rejoinAfterMs`;
 * - a crash is the parent's SIGKILL: nothing runs, the session expires in Consul.
 */
import type { ClientRequest } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { now, sleep } from '../clock.js';
import { ConsulHttp } from '../consul-http.js';
import { serveParent } from '../in-child.js';
import type { BackendRequest, BackendStart, BackendStatus, LeaderNews, SteppedDown } from './protocol.js';

const RETRY_MS = 50;
const OK_BODY = Buffer.from('{"ok":true}\n');
const NOT_LEADER_BODY = Buffer.from('not the leader\n');

let consul: ConsulHttp | undefined;
let settings: BackendStart | undefined;
let port = 0;
/** Bumped when a campaign ends: its loop and timers stop. */
let generation = 0;
let session: string | null = null;
let leader = false;
let leaderSince = 0;
let lastRenewalAt = 0;
let served = 0;
let misdirected = 0;
let reading: ClientRequest | undefined;
let renewTimer: NodeJS.Timeout | undefined;
let rejoinTimer: NodeJS.Timeout | undefined;
const leaderWaits = new Set<(news: LeaderNews | null) => void>();

const server = http.createServer((req, res) => {
  req.resume();
  if (leader) {
    served += 1;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': OK_BODY.length });
    res.end(OK_BODY);
  } else {
    misdirected += 1;
    res.writeHead(421, { 'content-type': 'text/plain', 'content-length': NOT_LEADER_BODY.length });
    res.end(NOT_LEADER_BODY);
  }
});
server.on('clientError', (_error, socket) => socket.destroy());

function ttlMs(ttl: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(ttl);
  if (!match) throw new Error(`ttl: expected 10s, 500ms or 1m, got ${ttl}`);
  return Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 's' ? 1_000 : 60_000);
}

function becomeLeader(mine: string, at: number): void {
  leader = true;
  leaderSince = at;
  for (const resolve of [...leaderWaits]) resolve({ session: mine, at });
  leaderWaits.clear();
}

async function campaign(gen: number): Promise<void> {
  const http = consul as ConsulHttp;
  const { key, name, ttl, lockDelay } = settings as BackendStart;
  let mine: string;
  for (;;) {
    try {
      mine = await http.createSession({ name, ttl, lockDelay });
      break;
    } catch {
      if (gen !== generation) return;
      await sleep(RETRY_MS);
    }
  }
  if (gen !== generation) {
    await http.destroySession(mine).catch(() => undefined);
    return;
  }
  session = mine;
  lastRenewalAt = now();
  renewTimer = setInterval(
    () => {
      http.renewSession(mine).then(
        ({ sentAt }) => {
          lastRenewalAt = sentAt;
        },
        () => undefined,
      );
    },
    ttlMs(ttl) / 2,
  );
  const value = JSON.stringify({ host: '127.0.0.1', port, name });
  let index = 0n;
  while (gen === generation) {
    let holder: string | null;
    try {
      const read = await http.readKey(key, index, (request) => {
        reading = request;
      });
      index = read.index < index ? 0n : read.index;
      holder = read.holder?.session ?? null;
    } catch {
      if (gen !== generation) return;
      index = 0n;
      await sleep(RETRY_MS);
      continue;
    }
    if (gen !== generation) return;
    if (holder === mine) continue;
    leader = false;
    if (holder !== null) continue;
    const { sentAt, value: won } = await http.acquire(key, mine, value).catch(() => ({
      sentAt: 0,
      value: false,
    }));
    if (gen !== generation) return; // a step-down destroys the session, which releases a late win
    if (won) {
      becomeLeader(mine, sentAt);
    } else {
      // Refused (a lock-delay) or taken by another: read again at once, without blocking.
      index = 0n;
      await sleep(RETRY_MS);
    }
  }
}

/** Ends the campaign: 421 at once, then (if `releaseKey`) releases the key; destroys the session. */
async function endCampaign(releaseKey: boolean): Promise<SteppedDown | null> {
  generation += 1;
  const downAt = now();
  const wasLeader = leader;
  leader = false;
  clearInterval(renewTimer);
  reading?.destroy();
  reading = undefined;
  const mine = session;
  session = null;
  if (!mine || !consul || !settings) return null;
  let releaseSentAt = 0;
  let released = false;
  if (releaseKey && wasLeader) {
    const sent = await consul.release(settings.key, mine, '').catch(() => ({ sentAt: 0, value: false }));
    releaseSentAt = sent.sentAt;
    released = sent.value;
  }
  await consul.destroySession(mine).catch(() => undefined);
  return { session: mine, downAt, releaseSentAt, released };
}

function waitLeader(timeoutMs: number): Promise<LeaderNews | null> {
  if (leader && session) return Promise.resolve({ session, at: leaderSince });
  return new Promise((resolve) => {
    const done = (news: LeaderNews | null): void => {
      clearTimeout(timer);
      leaderWaits.delete(done);
      resolve(news);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    leaderWaits.add(done);
  });
}

async function handle(request: BackendRequest): Promise<unknown> {
  switch (request.type) {
    case 'start': {
      settings = request;
      consul = new ConsulHttp(request.consul.host, request.consul.port);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
      void campaign(generation);
      return { port };
    }
    case 'waitLeader':
      return waitLeader(request.timeoutMs);
    case 'cancelWaits':
      for (const resolve of [...leaderWaits]) resolve(null);
      return null;
    case 'stepDown': {
      const stepped = await endCampaign(true);
      if (!stepped) throw new Error('not campaigning: nothing to step down from');
      clearTimeout(rejoinTimer);
      rejoinTimer = setTimeout(() => void campaign(generation), request.rejoinAfterMs);
      return stepped;
    }
    case 'status': {
      const status: BackendStatus = { leader, session, lastRenewalAt, served, misdirected };
      return status;
    }
    case 'cpu': {
      const { user, system } = process.cpuUsage();
      return user + system;
    }
    case 'now':
      return now();
    case 'exit':
      return null;
  }
}

serveParent<BackendRequest>(handle, async () => {
  clearTimeout(rejoinTimer);
  // Never hang on a gone agent: the session's TTL cleans up anyway.
  await Promise.race([endCampaign(true), sleep(2_000)]);
  server.closeAllConnections();
  server.close();
  consul?.close();
});
