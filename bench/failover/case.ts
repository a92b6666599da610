/**
 * Case 5, failover observation. The floor (case 1's bare-http loop), the SDK
 * and the SDK with `watchSessions` each follow every key of the case from their own worker thread; the
 * contenders run on the main thread (bare `http`).
 *
 * - Session destroyed: a holder's session is destroyed while a second
 *   contender is blocked on the key; from the destroy to `null`, and to the
 *   contender's emission as the next leader. First with lock-delay 0s
 *   (sequential, on one key), then with Consul's default 15s (one key per
 *   sample, started `STAGGER_MS` apart so they overlap in time but no two
 *   events fall together).
 * - TTL expired: a holder with a TTL session stops renewing (a killed
 *   process); from its last renewal to `null`. What Consul takes is when the
 *   floor sees it; what the SDK adds is the SDK's emission minus that. These
 *   samples run alongside the 15s ones, their events in between.
 */
import { now, sleep } from '../clock.js';
import { ConsulHttp } from '../consul-http.js';
import { withAgent } from '../lifecycle.js';
import type { SdkSnapshot } from '../sdk-snapshot.js';
import type { LeaderView } from '../latency/protocol.js';
import type { ClockCheck } from '../latency/watcher-thread.js';
import { BlockedContender } from './contender.js';
import { KeyWatcherThread } from './threads.js';

export const TTL = '10s';
export const TTL_MS = 10_000;
export const DEFAULT_LOCK_DELAY_MS = 15_000;
/** While Consul refuses its acquire (lock-delay), the contender tries again this often. */
export const RETRY_MS = 50;
/** Start of consecutive slow samples: not a divisor of 15 s, so no destroy falls on an earlier takeover. */
export const STAGGER_MS = 1_150;
/** How often a TTL holder renews its session until it "dies". */
export const RENEW_EVERY_MS = 4_000;
const SHOW_TIMEOUT_MS = 10_000;
/** After the contender is blocked, before the destroy: every watcher is blocking again. */
const SETTLE_MS = 20;

export interface FailoverSettings {
  readonly zeroDelaySamples: number;
  readonly defaultDelaySamples: number;
  readonly ttlSamples: number;
}

export function failoverSettings(quick: boolean): FailoverSettings {
  return quick
    ? { zeroDelaySamples: 10, defaultDelaySamples: 2, ttlSamples: 1 }
    : { zeroDelaySamples: 20, defaultDelaySamples: 20, ttlSamples: 5 };
}

/** Milliseconds from the destroy (right before its PUT was written); null: not seen. */
export interface DestroySample {
  readonly floorNull: number | null;
  readonly sdkNull: number | null;
  /** The SDK with `watchSessions: true`. */
  readonly sessionsNull: number | null;
  readonly floorNext: number | null;
  readonly sdkNext: number | null;
  readonly sessionsNext: number | null;
  /** The contender's first acquire attempt, and the one that succeeded (sent). */
  readonly firstAttempt: number | null;
  readonly acquired: number | null;
  readonly attempts: number;
}

/** Milliseconds from the holder's last renewal (right before its PUT was written). */
export interface TtlSample {
  readonly floorNull: number | null;
  readonly sdkNull: number | null;
  readonly sessionsNull: number | null;
}

export interface FailoverResult {
  readonly settings: FailoverSettings;
  readonly zeroDelay: readonly DestroySample[];
  readonly defaultDelay: readonly DestroySample[];
  readonly ttl: readonly TtlSample[];
  readonly clocks: readonly ClockCheck[];
  /** Keys the watchers follow. */
  readonly keys: number;
  readonly zeroDelayMs: number;
  readonly slowMs: number;
  readonly durationMs: number;
}

type Watchers = readonly [floor: KeyWatcherThread, sdk: KeyWatcherThread, sessions: KeyWatcherThread];

const shows =
  (session: string, seq: number) =>
  (view: LeaderView): boolean =>
    view !== null && view.session === session && view.seq === seq;
const isNull = (view: LeaderView): boolean => view === null;

/** Has the holder take `key` and waits until every watcher shows it. */
async function takeKey(http: ConsulHttp, watchers: Watchers, key: string, session: string, seq: number) {
  const marks = watchers.map((w) => w.mark(key));
  const { value } = await http.acquire(key, session, JSON.stringify({ seq }));
  if (!value) throw new Error(`${key}: the holder could not acquire it`);
  for (const [i, watcher] of watchers.entries()) {
    const seen = await watcher.waitFor(key, marks[i] ?? 0, shows(session, seq), SHOW_TIMEOUT_MS);
    if (!seen) throw new Error(`${key}: ${watcher.kind} did not show the holder`);
  }
}

interface Prepared<S> {
  /** Makes the event at `at` (now() clock; at once if past) and measures. */
  run(at: number): Promise<S>;
}

async function prepareDestroy(
  http: ConsulHttp,
  watchers: Watchers,
  key: string,
  seq: number,
  lockDelay: string,
  lockDelayMs: number,
): Promise<Prepared<DestroySample>> {
  const holder = await http.createSession({ name: `holder-${seq}`, lockDelay });
  await takeKey(http, watchers, key, holder, seq);
  const next = await http.createSession({ name: `contender-${seq + 1}`, lockDelay });
  const contender = new BlockedContender(http, key, next, JSON.stringify({ seq: seq + 1 }), RETRY_MS);
  await contender.blocked;
  await sleep(SETTLE_MS);
  return {
    async run(at) {
      await sleep(at - now());
      const from = watchers.map((w) => w.mark(key));
      const { sentAt: t0 } = await http.destroySession(holder);
      const timeout = lockDelayMs + SHOW_TIMEOUT_MS;
      const seen = await Promise.all(
        watchers.map((w, i) => w.waitFor(key, from[i] ?? 0, shows(next, seq + 1), timeout)),
      );
      const takeover = await Promise.race([contender.takeover, sleep(1_000).then(() => null)]);
      contender.stop();
      const since = (at: number | undefined): number | null => (at === undefined ? null : at - t0);
      // A null counts only if it came before the next leader.
      const nullOf = (i: number): number | null => {
        const watcher = watchers[i] as KeyWatcherThread;
        const first = watcher.find(key, from[i] ?? 0, isNull);
        const nextAt = seen[i]?.at ?? Number.POSITIVE_INFINITY;
        return first && first.at <= nextAt ? first.at - t0 : null;
      };
      // Clean up: the key is free again once every watcher shows it.
      const freed = watchers.map((w) => w.mark(key));
      await http.destroySession(next);
      await Promise.all(watchers.map((w, i) => w.waitFor(key, freed[i] ?? 0, isNull, SHOW_TIMEOUT_MS)));
      return {
        floorNull: nullOf(0),
        sdkNull: nullOf(1),
        sessionsNull: nullOf(2),
        floorNext: since(seen[0]?.at),
        sdkNext: since(seen[1]?.at),
        sessionsNext: since(seen[2]?.at),
        firstAttempt: since(takeover?.firstAttemptAt),
        acquired: since(takeover?.acquiredAt),
        attempts: takeover?.attempts ?? 0,
      };
    },
  };
}

async function prepareTtl(
  http: ConsulHttp,
  watchers: Watchers,
  key: string,
  seq: number,
): Promise<Prepared<TtlSample>> {
  // Consul's default lock-delay (15s): it does not delay `null`, only the next acquisition.
  const holder = await http.createSession({ name: `ttl-holder-${seq}`, ttl: TTL });
  await takeKey(http, watchers, key, holder, seq);
  const renewals = setInterval(() => {
    http.renewSession(holder).catch(() => {});
  }, RENEW_EVERY_MS);
  return {
    async run(at) {
      await sleep(at - now());
      clearInterval(renewals);
      const from = watchers.map((w) => w.mark(key));
      // The last renewal: from here on the "process" is dead.
      const { sentAt: t0 } = await http.renewSession(holder);
      const seen = await Promise.all(
        watchers.map((w, i) => w.waitFor(key, from[i] ?? 0, isNull, 2 * TTL_MS + SHOW_TIMEOUT_MS)),
      );
      const since = (at: number | undefined): number | null => (at === undefined ? null : at - t0);
      return { floorNull: since(seen[0]?.at), sdkNull: since(seen[1]?.at), sessionsNull: since(seen[2]?.at) };
    },
  };
}

export async function runFailoverCase(
  quick: boolean,
  log: (line: string) => void,
  sdk?: SdkSnapshot,
): Promise<FailoverResult> {
  const settings = failoverSettings(quick);
  const started = now();
  return withAgent({}, log, async (agent) => {
    const base = `bench/failover-${Date.now()}`;
    const zeroKey = `${base}/lock-delay-0s/leader`;
    const slowKeys = Array.from(
      { length: settings.defaultDelaySamples },
      (_, i) => `${base}/lock-delay-15s/${i}`,
    );
    const ttlKeys = Array.from({ length: settings.ttlSamples }, (_, i) => `${base}/ttl/${i}`);
    const keys = [zeroKey, ...slowKeys, ...ttlKeys];
    const http = new ConsulHttp(agent.host, agent.port);
    const watchers: Watchers = [
      new KeyWatcherThread('floor', agent, keys),
      new KeyWatcherThread('sdk', agent, keys, sdk?.url),
      new KeyWatcherThread('sdk-sessions', agent, keys, sdk?.url),
    ];
    try {
      // Every watcher has read every key (all missing) before anything happens.
      for (const watcher of watchers) {
        for (const key of keys) {
          if (!(await watcher.waitFor(key, 0, () => true, 20_000))) {
            throw new Error(`${watcher.kind}: no first reading of ${key}`);
          }
        }
      }
      const clocks: ClockCheck[] = [];
      for (const watcher of watchers) clocks.push(await watcher.checkClock());

      // Lock-delay 0s: one sample after the other, on one key.
      const zeroStarted = now();
      const zeroDelay: DestroySample[] = [];
      for (let i = 0; i < settings.zeroDelaySamples; i += 1) {
        const prepared = await prepareDestroy(http, watchers, zeroKey, 2 * i + 1, '0s', 0);
        zeroDelay.push(await prepared.run(now()));
      }
      const zeroDelayMs = now() - zeroStarted;
      log(`failover: ${zeroDelay.length} destroys with lock-delay 0s (${(zeroDelayMs / 1000).toFixed(1)} s)`);

      // Default lock-delay and TTL expiries, overlapping in time, their events staggered.
      const slowStarted = now();
      log(
        `failover: ${settings.defaultDelaySamples} destroys with lock-delay 15s and ${settings.ttlSamples} TTL expiries (each 15-20 s, overlapping)`,
      );
      const destroys = await Promise.all(
        slowKeys.map((key) => prepareDestroy(http, watchers, key, 1, '15s', DEFAULT_LOCK_DELAY_MS)),
      );
      const expiries = await Promise.all(ttlKeys.map((key) => prepareTtl(http, watchers, key, 1)));
      const t0 = now() + 500;
      const [defaultDelay, ttl] = await Promise.all([
        Promise.all(destroys.map((p, i) => p.run(t0 + i * STAGGER_MS))),
        Promise.all(expiries.map((p, j) => p.run(t0 + STAGGER_MS / 2 + j * 2 * STAGGER_MS))),
      ]);
      const slowMs = now() - slowStarted;
      log(`failover: slow samples done (${(slowMs / 1000).toFixed(1)} s)`);
      return {
        settings,
        zeroDelay,
        defaultDelay,
        ttl,
        clocks,
        keys: keys.length,
        zeroDelayMs,
        slowMs,
        durationMs: now() - started,
      };
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
      http.close();
    }
  });
}
