/**
 * The `logger` option: what an operator needs to read in a structured log, without repeats.
 *
 * - An outage of a followed unit (a key, or a prefix as a whole): one `warn` at its first
 *   failed read (`durationMs: 0`: the outage is timed from the first failure the SDK reports),
 *   then nothing per retry, and one `info` when Consul answers again, with the outage's length
 *   (`durationMs` and a readable duration) and how many reads failed.
 * - A run of `PERMISSION_DENIED` in an outage: one `error` instead of the `warn` (a denial
 *   that follows other failures in the same outage logs its `error` then, with the outage's
 *   length so far); its end is the outage's `info`. Other failures after a denial log the
 *   outage's `warn` once. So an outage logs at most one `warn`, one `error` and one `info`.
 * - A unit no longer followed while in an outage (an unsubscribe, `close()`): one `info`
 *   with `resolved: false`.
 * - An `invalid` value: one `warn` per distinct value of a key (distinct by its raw text, as
 *   the state carries it: invalid bytes replaced, cut at 4 KiB), the last
 *   `INVALID_VALUES_REMEMBERED` distinct values of each unit remembered (hashed).
 * - Who leads a key, at `debug`: its first state, then each change of leader (another
 *   session, or the same session acquiring again) and each loss of its leader.
 *
 * Never a token: objects are built from states (keys, sessions, descriptors, error codes and
 * messages, which never hold a token) and never from a unit's `id` (it holds the read
 * scope's token), a request's URL or its headers. A logger that throws is ignored.
 */
import type { LeaderLogger } from '../config/options.js';
import type { LeaderState, PrefixOutage } from '../state/states.js';
import type { FollowedUnit, TelemetrySink } from './telemetry.js';

/** Distinct invalid values remembered per unit (as hashes), the least recently seen forgotten first. */
export const INVALID_VALUES_REMEMBERED = 256;
/** The most of an invalid value's raw text a log line carries. */
export const RAW_LOGGED_CHARS = 256;
/** The most descriptor issues a log line carries. */
const ISSUES_LOGGED = 5;

type Level = 'debug' | 'info' | 'warn' | 'error';
type Unreachable = Extract<LeaderState<unknown>, { status: 'unreachable' }>;
type Settled = Exclude<LeaderState<unknown>, { status: 'unreachable' }>;

interface Outage {
  /** When its first failed read was reported (the clock's ms). */
  readonly startedAt: number;
  /** Failed reads in a row (the highest `attempt` told). */
  attempts: number;
  /** The last failure's code. */
  code: string;
  /** Its `warn` was logged (a failure other than PERMISSION_DENIED). */
  warned: boolean;
  /** Its `error` was logged (PERMISSION_DENIED). */
  denied: boolean;
}

interface UnitLog {
  outage: Outage | null;
  /** A key unit's last unreachable state: what it keeps as the truth (told just before the outage). */
  lastKnown: { lastKnown: string | null; lastKnownSessionId?: string } | undefined;
  /** A key unit's last settled status (told just before the outage ends). */
  status: string | undefined;
  /** By key: who leads it (`sessionId/lockIndex`), null for no leader. */
  readonly leaders: Map<string, string | null>;
  /** Hashes of the invalid values warned about (insertion order: least recently seen first). */
  readonly invalid: Set<string>;
}

/**
 * The sink of the `logger` option. `now` (ms, monotonic) is for tests.
 */
export function createLogSink(
  logger: LeaderLogger,
  now: () => number = () => performance.now(),
): TelemetrySink {
  const units = new Map<string, UnitLog>();

  const log = (level: Level, obj: object, msg: string): void => {
    try {
      logger[level](obj, msg);
    } catch {
      // A logger that throws must not break the SDK.
    }
  };

  const unitLog = (unit: FollowedUnit): UnitLog => {
    let entry = units.get(unit.id);
    if (!entry) {
      entry = {
        outage: null,
        lastKnown: undefined,
        status: undefined,
        leaders: new Map(),
        invalid: new Set(),
      };
      units.set(unit.id, entry);
    }
    return entry;
  };

  const failed = (unit: FollowedUnit, entry: UnitLog, state: PrefixOutage): void => {
    const denied = state.error.code === 'PERMISSION_DENIED';
    let outage = entry.outage;
    if (!outage) {
      outage = {
        startedAt: now(),
        attempts: 0,
        code: state.error.code,
        warned: false,
        denied: false,
      };
      entry.outage = outage;
    }
    outage.attempts = Math.max(outage.attempts, state.attempt);
    outage.code = state.error.code;
    if (denied ? outage.denied : outage.warned) return;
    const durationMs = Math.round(now() - outage.startedAt);
    const obj = {
      key: unit.key,
      type: unit.type,
      code: state.error.code,
      ...(state.error.status === undefined ? {} : { statusCode: state.error.status }),
      error: state.error.message,
      attempt: state.attempt,
      retryInMs: state.retryInMs,
      durationMs,
      // A prefix's keys each have their own: only a key's is told.
      ...(unit.type === 'key' ? entry.lastKnown : {}),
    };
    const since = durationMs > 0 ? ` (for ${formatDuration(durationMs)})` : '';
    const retrying = `retrying in ${formatDuration(state.retryInMs)}`;
    if (denied) {
      outage.denied = true;
      log(
        'error',
        obj,
        `Consul denies reading ${unit.type} ${quote(unit.key)}${since}: ${state.error.message} ` +
          `(PERMISSION_DENIED: check the ACL token and its policy); ${retrying}`,
      );
    } else {
      outage.warned = true;
      log(
        'warn',
        obj,
        `Consul cannot be read for ${unit.type} ${quote(unit.key)}${since}: ${state.error.message} ` +
          `(${state.error.code}); ${retrying}`,
      );
    }
  };

  const outageOver = (unit: FollowedUnit, outage: Outage, resolved: boolean, status?: string): void => {
    const durationMs = Math.round(now() - outage.startedAt);
    const reads = `${outage.attempts} failed read${outage.attempts === 1 ? '' : 's'}`;
    const obj = {
      key: unit.key,
      type: unit.type,
      durationMs,
      attempts: outage.attempts,
      code: outage.code,
      resolved,
      ...(status ? { state: status } : {}),
    };
    log(
      'info',
      obj,
      resolved
        ? `Consul answers again for ${unit.type} ${quote(unit.key)} after ${formatDuration(durationMs)} (${reads})`
        : `No longer following ${unit.type} ${quote(unit.key)}, unread for ${formatDuration(durationMs)} (${reads})`,
    );
  };

  const invalidValue = (
    unit: FollowedUnit,
    entry: UnitLog,
    key: string,
    state: Extract<Settled, { status: 'invalid' }>,
  ): void => {
    const seen = `${hash(state.raw)}:${state.raw.length}:${key}`;
    if (entry.invalid.delete(seen)) {
      entry.invalid.add(seen);
      return;
    }
    entry.invalid.add(seen);
    if (entry.invalid.size > INVALID_VALUES_REMEMBERED) {
      const oldest = entry.invalid.values().next();
      if (!oldest.done) entry.invalid.delete(oldest.value);
    }
    const raw = state.raw.length > RAW_LOGGED_CHARS ? `${state.raw.slice(0, RAW_LOGGED_CHARS)}…` : state.raw;
    log(
      'warn',
      {
        key,
        ...inPrefix(unit),
        code: state.error.code,
        error: state.error.message,
        issues: state.issues
          .slice(0, ISSUES_LOGGED)
          .map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message })),
        sessionId: state.session.id,
        sessionNode: state.session.node,
        lockIndex: state.entry.lockIndex.toString(),
        modifyIndex: state.entry.modifyIndex.toString(),
        raw,
        rawLength: state.raw.length,
      },
      `Key ${quote(key)} holds a value that is not a valid descriptor ` +
        `(session ${state.session.id} on Consul node ${quote(state.session.node)}): ${state.error.message}`,
    );
  };

  const leaderChange = (unit: FollowedUnit, entry: UnitLog, key: string, state: Settled): void => {
    const leading = state.status === 'leader' ? `${state.leader.session.id}/${state.leader.lockIndex}` : null;
    const before = entry.leaders.get(key);
    if (before === leading) return;
    entry.leaders.set(key, leading);
    const previous = before ? { previousSessionId: before.slice(0, before.lastIndexOf('/')) } : {};
    if (state.status === 'leader') {
      const { session } = state.leader;
      log(
        'debug',
        {
          key,
          ...inPrefix(unit),
          state: 'leader',
          sessionId: session.id,
          sessionName: session.name,
          sessionNode: session.node,
          lockIndex: state.leader.lockIndex.toString(),
          node: state.leader.node,
          ...previous,
        },
        `Key ${quote(key)} is led by session ${session.id} on Consul node ${quote(session.node)}`,
      );
      return;
    }
    // Logged when the key first has no leader, and when it loses one (not vacant to invalid).
    if (before === null) return;
    const why = state.status === 'vacant' ? state.reason : 'invalid value';
    log(
      'debug',
      {
        key,
        ...inPrefix(unit),
        state: state.status,
        ...(state.status === 'vacant' ? { reason: state.reason } : { sessionId: state.session.id }),
        ...previous,
      },
      `Key ${quote(key)} has no leader (${why})`,
    );
  };

  return {
    // Outages are the unit's (a prefix's is one outage), as the hub tells them.
    reachable(unit, outage) {
      try {
        const entry = unitLog(unit);
        if (outage) {
          failed(unit, entry, outage);
        } else if (entry.outage) {
          const over = entry.outage;
          entry.outage = null;
          outageOver(unit, over, true, entry.status);
        }
      } catch {
        // Logging must never break the SDK.
      }
    },
    followed(unit, delta) {
      try {
        if (delta === 1) {
          unitLog(unit);
          return;
        }
        const entry = units.get(unit.id);
        units.delete(unit.id);
        if (entry?.outage) outageOver(unit, entry.outage, false);
      } catch {
        // Logging must never break the SDK.
      }
    },
    state(unit, key, state) {
      try {
        const entry = unitLog(unit);
        if (state.status === 'unreachable') {
          entry.lastKnown = lastKnownOf(state);
          return;
        }
        if (unit.type === 'key') entry.status = state.status;
        if (state.status === 'invalid') invalidValue(unit, entry, key, state);
        leaderChange(unit, entry, key, state);
      } catch {
        // Logging must never break the SDK.
      }
    },
  };
}

/** What a key's outage keeps as the truth until Consul answers. */
function lastKnownOf(state: Unreachable): { lastKnown: string | null; lastKnownSessionId?: string } {
  const last = state.lastKnown;
  if (last?.status === 'leader')
    return { lastKnown: last.status, lastKnownSessionId: last.leader.session.id };
  return { lastKnown: last?.status ?? null };
}

/** A key of a prefix names its prefix. */
function inPrefix(unit: FollowedUnit): { prefix?: string } {
  return unit.type === 'prefix' ? { prefix: unit.key } : {};
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** A duration for a human: "840 ms", "1.2 s", "3 min 5 s", "2 h 10 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms} ms`;
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** 53 bits of a string (cyrb53): enough to tell a key's invalid values apart. */
function hash(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
