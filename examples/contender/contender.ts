/**
 * A contender: one process that campaigns for a leader key the way Consul's
 * leader-election guide describes, through the `consul` package (node-consul).
 *
 *   tsx examples/contender/contender.ts --addr 127.0.0.1:8500 --key service/demo/leader \
 *     --name c1 --host 127.0.0.1 --port 9001
 *
 * - creates a session (TTL, Behavior "release", a lock-delay) and renews it every TTL/2;
 * - tries `PUT /v1/kv/<key>?acquire=<session>` with a JSON descriptor as the value;
 * - follows the key with a blocking query, and while no session holds it retries
 *   the acquire every second (after an invalidation Consul refuses acquires
 *   for the lock-delay);
 * - SIGUSR1: steps down (releases the key, destroys the session), then campaigns
 *   again with a new session after a short pause;
 * - SIGTERM / SIGINT: releases the key, destroys the session, exits 0;
 * - SIGKILL is a crash: nothing runs, the session's TTL expires in Consul.
 */
import Consul from 'consul';
import { parseArgs } from 'node:util';

// ---- options

const { values: args } = parseArgs({
  options: {
    addr: { type: 'string', default: process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500' },
    key: { type: 'string', default: 'service/demo/leader' },
    name: { type: 'string', default: `contender-${process.pid}` },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    ttl: { type: 'string', default: '10s' },
    'lock-delay': { type: 'string', default: '5s' },
    'rejoin-after': { type: 'string', default: '3s' },
  },
  strict: true,
});

function durationMs(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`--${flag}: expected a duration like 500ms, 10s or 1m, got "${text}"`);
  const unit = match[2] === 'ms' ? 1 : match[2] === 's' ? 1_000 : 60_000;
  return Number(match[1]) * unit;
}

const addr = args.addr.replace(/^https?:\/\//, '');
const separator = addr.lastIndexOf(':');
const consulHost = separator > 0 ? addr.slice(0, separator) : addr;
const consulPort = separator > 0 ? Number(addr.slice(separator + 1)) : 8500;
const key = args.key;
const name = args.name;
const port = Number(args.port);
const ttl = args.ttl;
const lockDelay = args['lock-delay'];
const ttlMs = durationMs('ttl', ttl);
const rejoinAfterMs = durationMs('rejoin-after', args['rejoin-after']);
durationMs('lock-delay', lockDelay);
if (!Number.isInteger(consulPort) || !Number.isInteger(port)) throw new Error('--addr / --port: bad port');

const RETRY_MS = 1_000;

// ---- node-consul, with the few types its declarations lack

const consul = new Consul({ host: consulHost, port: consulPort });

/** A KV entry as Consul returns it (node-consul's type has no `Session`). */
interface KvEntry {
  readonly Key: string;
  readonly Value: string | null;
  readonly Session?: string;
  readonly LockIndex: number;
  readonly ModifyIndex: number;
}

/** PUT ?acquire / ?release: node-consul resolves `true`, or false/undefined when refused. */
async function putLock(op: 'acquire' | 'release', session: string, value: string): Promise<boolean> {
  return (await consul.kv.set({ key, value, [op]: session } as never)) === true;
}

async function readKey(): Promise<KvEntry | undefined> {
  return ((await consul.kv.get(key)) ?? undefined) as KvEntry | undefined;
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- logging

const log = (line: string): void => console.log(`[${name}] ${line}`);
const short = (session: string): string => session.slice(0, 8);

/** Logs an error at most once per `what` until `quiet(what)` is called, so outages do not flood. */
const noisy = new Set<string>();
function warn(what: string, err: unknown): void {
  if (noisy.has(what)) return;
  noisy.add(what);
  log(`${what} failed: ${messageOf(err)} (retrying)`);
}
const quiet = (what: string): boolean => noisy.delete(what);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the campaign

type Phase = 'campaigning' | 'stepping-down' | 'stopping';

let phase: Phase = 'campaigning';
/** Bumped whenever a campaign ends: callbacks of an older campaign then do nothing. */
let generation = 0;
let session: string | undefined;
let leader = false;
/** The descriptor written by the acquire that made us leader (written again on release). */
let heldValue = '';
let acquiring = false;
/** The acquire being sent, if any: an ending campaign waits for it, as it may still win. */
let acquireInFlight: Promise<boolean> | undefined;
let lastAttempt = 0;
/** The key as last seen by the blocking query. */
let lastEntry: KvEntry | undefined;
let refusalLogged = false;
let watch: ReturnType<Consul['watch']> | undefined;
let renewTimer: NodeJS.Timeout | undefined;
let retryTimer: NodeJS.Timeout | undefined;

const descriptor = (): string =>
  JSON.stringify({ host: args.host, port, name, pid: process.pid, since: new Date().toISOString() });

async function createSession(gen: number): Promise<string | undefined> {
  while (phase === 'campaigning' && gen === generation) {
    try {
      const created = await consul.session.create({
        name: `${key} (${name})`,
        ttl,
        behavior: 'release',
        lockdelay: lockDelay,
      });
      quiet('session create');
      return created.ID;
    } catch (err) {
      warn('session create', err);
      await sleep(RETRY_MS);
    }
  }
  return undefined;
}

function becomeLeader(): void {
  if (leader) return;
  leader = true;
  refusalLogged = false;
  log(`leader (session ${short(session ?? '')})`);
}

function loseLeadership(why: string): void {
  if (!leader) return;
  leader = false;
  log(`lost leadership: ${why}`);
}

async function tryAcquire(gen: number): Promise<void> {
  const mine = session;
  if (acquiring || leader || !mine || phase !== 'campaigning' || gen !== generation) return;
  acquiring = true;
  lastAttempt = Date.now();
  const value = descriptor();
  const put = putLock('acquire', mine, value);
  acquireInFlight = put.catch(() => false);
  try {
    const won = await put;
    quiet('acquire');
    // Kept even when the campaign ended meanwhile: endCampaign then releases with it.
    if (won) heldValue = value;
    if (gen !== generation) return;
    if (won) {
      becomeLeader();
      return;
    }
    // Refused: either another contender won the race, or Consul enforces the
    // lock-delay of a session that was invalidated while holding the key.
    const now = await readKey();
    if (gen === generation && !now?.Session && !refusalLogged) {
      refusalLogged = true;
      log(`key vacant but acquire refused (lock-delay): retrying every ${RETRY_MS / 1000}s`);
    }
  } catch (err) {
    warn('acquire', err);
  } finally {
    acquiring = false;
  }
}

function onKey(gen: number, entry: KvEntry | undefined): void {
  if (gen !== generation) return;
  quiet('watch');
  lastEntry = entry;
  const holder = entry?.Session;
  if (holder && holder === session) {
    becomeLeader();
  } else if (holder) {
    loseLeadership(`session ${short(holder)} holds the key now`);
    refusalLogged = false;
  } else {
    if (leader) {
      // Released, but not by us: most likely our session was invalidated (destroyed by an
      // operator, or expired). A renew tells at once, and starts a new campaign if so.
      loseLeadership('the key was released');
      void renew(gen);
    }
    void tryAcquire(gen);
  }
}

async function renew(gen: number): Promise<void> {
  const mine = session;
  if (!mine || gen !== generation) return;
  try {
    await consul.session.renew(mine);
    quiet('session renew');
  } catch (err) {
    if (gen !== generation) return;
    if (statusOf(err) === 404) {
      // Invalidated behind our back (an operator, or we were paused past 2×TTL).
      log(`session ${short(mine)} no longer exists: campaigning with a new one`);
      await endCampaign(false);
      if (phase === 'campaigning') void campaign();
      return;
    }
    warn('session renew', err);
  }
}

async function campaign(): Promise<void> {
  const gen = generation;
  const created = await createSession(gen);
  if (!created || gen !== generation || phase !== 'campaigning') {
    if (created) await consul.session.destroy(created).catch(() => undefined);
    return;
  }
  session = created;
  leader = false;
  lastEntry = undefined;
  refusalLogged = false;
  log(`campaigning for ${key} (session ${short(created)}, TTL ${ttl}, lock-delay ${lockDelay})`);

  renewTimer = setInterval(() => void renew(gen), ttlMs / 2);
  // A blocking query on the key: node-consul's Watch re-issues GET ?index=... and
  // emits 'change' when the key's index moves (its first answer comes at once).
  const w = consul.watch({ method: consul.kv.get, options: { key } });
  watch = w;
  w.on('change', (entry: KvEntry | undefined) => onKey(gen, entry));
  w.on('error', (err: unknown) => warn('watch', err));
  // While the key is vacant, retry on a timer too: the blocking query says
  // nothing new while a lock-delay makes our acquires fail.
  retryTimer = setInterval(() => {
    if (!leader && lastEntry?.Session === undefined && Date.now() - lastAttempt >= RETRY_MS - 50) {
      void tryAcquire(gen);
    }
  }, RETRY_MS);
}

interface Ended {
  readonly session?: string;
  released: boolean;
  destroyed: boolean;
  error?: string;
}

/** Stops the current campaign; with `release`, gives up the key first (if held). Then destroys the session. */
async function endCampaign(release: boolean): Promise<Ended> {
  generation += 1;
  clearInterval(renewTimer);
  clearInterval(retryTimer);
  watch?.end();
  watch = undefined;
  const mine = session;
  session = undefined;
  const wasLeader = leader;
  leader = false;
  if (!mine) return { released: false, destroyed: false };
  const ended: Ended = { session: mine, released: false, destroyed: false };
  // An acquire sent just before may win after all: release that too, else destroying the
  // session would leave the key held until Consul releases it with a lock-delay.
  const lateWin = (await acquireInFlight) === true;
  acquireInFlight = undefined;
  if (release && (wasLeader || lateWin)) {
    try {
      // Releasing (not just destroying the session) means no lock-delay: the next leader follows at once.
      ended.released = await putLock('release', mine, heldValue);
    } catch (err) {
      ended.error = messageOf(err);
    }
  }
  try {
    await consul.session.destroy(mine);
    ended.destroyed = true;
  } catch (err) {
    if (statusOf(err) === 404) ended.destroyed = true;
    else ended.error ??= messageOf(err);
  }
  return ended;
}

function outcome(ended: Ended): string {
  if (!ended.session) return 'no session held';
  const done = [
    ...(ended.released ? ['released the key'] : []),
    ...(ended.destroyed ? [`destroyed session ${short(ended.session)}`] : []),
  ];
  if (ended.error) done.push(`Consul failed (${ended.error}): the session's TTL will clean up`);
  return done.join(', ');
}

async function stepDown(): Promise<void> {
  if (phase !== 'campaigning') return;
  if (!leader) {
    log('SIGUSR1: not the leader, nothing to step down from');
    return;
  }
  phase = 'stepping-down';
  log('stepping down (SIGUSR1)');
  const ended = await endCampaign(true);
  log(`stepped down (${outcome(ended)}): campaigning again in ${rejoinAfterMs / 1000}s`);
  await sleep(rejoinAfterMs);
  if (phase !== 'stepping-down') return;
  phase = 'campaigning';
  await campaign();
}

async function stop(signal: NodeJS.Signals): Promise<void> {
  if (phase === 'stopping') return;
  phase = 'stopping';
  // Never hang on an unreachable agent: the TTL cleans up after us anyway.
  setTimeout(() => {
    log('shutdown timed out');
    process.exit(1);
  }, 5_000).unref();
  const ended = await endCampaign(true);
  consul.destroy();
  log(`stopped (${signal}): ${outcome(ended)}`);
  process.exit(0);
}

process.on('SIGUSR1', () => void stepDown());
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

void campaign();
