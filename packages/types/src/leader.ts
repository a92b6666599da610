/**
 * The SDK's own values: who leads a key, and the full state of a key for dashboards.
 * Plain data (bigints for Consul's uint64 indexes), so the same schemas validate
 * what a server relays to a browser.
 */
import { z } from 'zod/v4';
import { Uint64Schema } from './wire.js';

/** What Consul said about the read that produced a state (from its response headers). */
export interface ConsulReadMeta {
  /** `X-Consul-Index` of the answer. */
  readonly index: bigint;
  /** `X-Consul-LastContact`: ms since the answering server heard from the Raft leader (stale reads). */
  readonly lastContactMs: number;
  /** `X-Consul-KnownLeader`: whether the answering server knew of a Raft leader. */
  readonly knownLeader: boolean;
}

/** The session holding the leader key, from `/v1/session/info/<id>`. */
export interface LeaderSession {
  readonly id: string;
  readonly name: string;
  /** The Consul node the session is bound to. */
  readonly node: string;
  /** Health checks that invalidate the session when critical. */
  readonly checks: readonly string[];
  /** What Consul does to held locks when the session is invalidated. */
  readonly behavior: 'release' | 'delete';
  /** The TTL as Consul reports it ("15s"), or "" when the session has no TTL. */
  readonly ttl: string;
  /** The TTL in ms, or null when the session has no TTL. */
  readonly ttlMs: number | null;
  /** How long Consul refuses a new acquire after this session loses the lock. */
  readonly lockDelayMs: number;
  readonly createIndex: bigint;
  readonly modifyIndex: bigint;
  readonly namespace?: string;
}

/** The KV entry's own fields, shared by `Leader` and the `invalid` state. */
export interface LeaderEntry {
  readonly key: string;
  /** How many times the key was acquired. */
  readonly lockIndex: bigint;
  readonly modifyIndex: bigint;
  readonly createIndex: bigint;
  readonly flags: bigint;
}

/** The current leader of a key: its decoded, validated descriptor and its Consul session. */
export interface Leader<T> extends LeaderEntry {
  /** The descriptor the leader wrote as the key's value, decoded and checked by your schema. */
  readonly node: T;
  readonly session: LeaderSession;
}

/** Why a key has no leader. */
export type VacantReason =
  /** The key does not exist (404), for example after a `delete`-behaviour session ended. */
  | 'key-missing'
  /** The key exists but no session holds it (released). */
  | 'no-session'
  /** The key names a session Consul no longer has. */
  | 'session-gone';

/** A serialisable error: what every SDK error class carries. */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  /** The HTTP status, for errors that come from a Consul answer. */
  readonly status?: number;
}

/** One reason a descriptor was refused: a zod issue, or a decoding failure (path []). */
export interface DescriptorIssue {
  readonly code: string;
  readonly message: string;
  readonly path: readonly PropertyKey[];
}

export interface LeaderStateLeader<T> {
  readonly status: 'leader';
  readonly key: string;
  readonly leader: Leader<T>;
  readonly consul: ConsulReadMeta;
}
export interface LeaderStateVacant {
  readonly status: 'vacant';
  readonly key: string;
  readonly reason: VacantReason;
  readonly consul: ConsulReadMeta;
}
/** A session holds the key but its value is not a valid descriptor: no leader a client can route to. */
export interface LeaderStateInvalid<E extends ErrorInfo = ErrorInfo> {
  readonly status: 'invalid';
  readonly key: string;
  readonly entry: LeaderEntry;
  readonly session: LeaderSession;
  /** The value as text (UTF-8, invalid bytes replaced), truncated to 4 KiB. */
  readonly raw: string;
  readonly error: E;
  readonly issues: readonly DescriptorIssue[];
  readonly consul: ConsulReadMeta;
}
/** Consul could not be read; the SDK retries after `retryInMs`. `lastKnown` stays the truth until then. */
export interface LeaderStateUnreachable<T, E extends ErrorInfo = ErrorInfo> {
  readonly status: 'unreachable';
  readonly key: string;
  readonly error: E;
  /** Failed attempts in a row (1 for the first failure). */
  readonly attempt: number;
  /** Delay before the next attempt. */
  readonly retryInMs: number;
  /** The last state read from Consul, or null if none was read yet. */
  readonly lastKnown: SettledLeaderState<T, E> | null;
}

/** A state read from Consul: anything but `unreachable`. */
export type SettledLeaderState<T, E extends ErrorInfo = ErrorInfo> =
  LeaderStateLeader<T> | LeaderStateVacant | LeaderStateInvalid<E>;

/** The full picture of one leader key, discriminated on `status`. */
export type LeaderState<T, E extends ErrorInfo = ErrorInfo> =
  SettledLeaderState<T, E> | LeaderStateUnreachable<T, E>;

// ---- schemas: validate the same values after a JSON round trip (bigints as decimal strings)

export const ConsulReadMetaSchema = z.object({
  index: Uint64Schema,
  lastContactMs: z.number().nonnegative(),
  knownLeader: z.boolean(),
});

export const LeaderSessionSchema = z.object({
  id: z.string(),
  name: z.string(),
  node: z.string(),
  checks: z.array(z.string()),
  behavior: z.enum(['release', 'delete']),
  ttl: z.string(),
  ttlMs: z.number().nonnegative().nullable(),
  lockDelayMs: z.number().nonnegative(),
  createIndex: Uint64Schema,
  modifyIndex: Uint64Schema,
  namespace: z.string().optional(),
});

const entryShape = {
  key: z.string(),
  lockIndex: Uint64Schema,
  modifyIndex: Uint64Schema,
  createIndex: Uint64Schema,
  flags: Uint64Schema,
};
export const LeaderEntrySchema = z.object(entryShape);

export const ErrorInfoSchema = z.object({
  code: z.string(),
  message: z.string(),
  status: z.number().int().optional(),
});

export const DescriptorIssueSchema = z.object({
  code: z.string(),
  message: z.string(),
  path: z.array(z.union([z.string(), z.number()])),
});

export const VacantReasonSchema = z.enum(['key-missing', 'no-session', 'session-gone']);

/** Schema of a `Leader<T>` whose descriptor is checked by `node`. */
export function leaderSchema<S extends z.ZodType>(node: S) {
  return z.object({ ...entryShape, node, session: LeaderSessionSchema });
}

/**
 * Schema of a `LeaderState<T>` (as relayed by a server, bigints as strings accepted). Its
 * return type is written out, not inferred: the shipped `.d.ts` then names no zod generic
 * whose arity differs between zod 4 and zod 3.25's `zod/v4` (the cast says what the
 * union parses to; TypeScript cannot see it through the generic node schema).
 */
export function leaderStateSchema<S extends z.ZodType>(node: S): z.ZodType<LeaderState<z.output<S>>> {
  const settled = z.discriminatedUnion('status', [
    z.object({
      status: z.literal('leader'),
      key: z.string(),
      leader: leaderSchema(node),
      consul: ConsulReadMetaSchema,
    }),
    z.object({
      status: z.literal('vacant'),
      key: z.string(),
      reason: VacantReasonSchema,
      consul: ConsulReadMetaSchema,
    }),
    z.object({
      status: z.literal('invalid'),
      key: z.string(),
      entry: LeaderEntrySchema,
      session: LeaderSessionSchema,
      raw: z.string(),
      error: ErrorInfoSchema,
      issues: z.array(DescriptorIssueSchema),
      consul: ConsulReadMetaSchema,
    }),
  ]);
  return z.union([
    settled,
    z.object({
      status: z.literal('unreachable'),
      key: z.string(),
      error: ErrorInfoSchema,
      attempt: z.number().int().positive(),
      retryInMs: z.number().nonnegative(),
      lastKnown: settled.nullable(),
    }),
  ]) as unknown as z.ZodType<LeaderState<z.output<S>>>;
}

/** JSON.stringify replacer that writes bigints as decimal strings (the schemas read them back). */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
