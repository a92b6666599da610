/** Reading `GET /v1/kv/<key>` answers into a `KvRead`. */
import { KvGetWireSchema, parseConsulJson } from '@consul-leader/types';
import type { LeaderEntry } from '@consul-leader/types';
import { InvalidResponseError } from '../errors.js';
import type { ConsulResponse } from './transport.js';
import { assertStatus } from './status.js';
import { readUint64 } from './uint64.js';

/** A KV entry as the SDK uses it: the value still base64, the session normalised. */
export interface KvEntry extends LeaderEntry {
  /** base64 of the value, or null when the key holds no value. */
  readonly valueBase64: string | null;
  /** The session holding the lock, or null when none does. */
  readonly session: string | null;
}

export type KvRead = { readonly kind: 'missing' } | { readonly kind: 'entry'; readonly entry: KvEntry };

export const KEY_MISSING: KvRead = Object.freeze({ kind: 'missing' });

/** Parses a JSON body, turning any failure into `INVALID_RESPONSE`. */
export function parseBody(res: ConsulResponse, what: string): unknown {
  const text = res.body.toString('utf8');
  try {
    return parseConsulJson(text);
  } catch (cause) {
    throw new InvalidResponseError(`${what}: body is not JSON (${res.body.length} bytes)`, {
      cause,
      status: res.status,
    });
  }
}

/**
 * A wire entry checked by hand: the hot path for big recursive answers, where
 * zod would cost more than the rest of the read. It reuses `previous` (the
 * same key's entry from the last answer) when the key was not written since,
 * so unchanged keys keep their objects. undefined: not a valid entry.
 */
export function fastEntry(value: unknown, previous: KvEntry | undefined): KvEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const { Key: key, Value: raw, Session: session } = o;
  if (typeof key !== 'string') return undefined;
  if (raw !== undefined && raw !== null && typeof raw !== 'string') return undefined;
  if (session !== undefined && typeof session !== 'string') return undefined;
  const modifyIndex = readUint64(o.ModifyIndex);
  const lockIndex = readUint64(o.LockIndex);
  const createIndex = readUint64(o.CreateIndex);
  const flags = readUint64(o.Flags);
  if (
    modifyIndex === undefined ||
    lockIndex === undefined ||
    createIndex === undefined ||
    flags === undefined
  ) {
    return undefined;
  }
  const holder = session ? session : null;
  if (
    previous &&
    previous.modifyIndex === modifyIndex &&
    previous.lockIndex === lockIndex &&
    previous.session === holder &&
    previous.valueBase64 === (raw ?? null)
  ) {
    return previous;
  }
  return { key, valueBase64: raw ?? null, session: holder, flags, lockIndex, createIndex, modifyIndex };
}

/** The entries of a 2xx KV answer, validated; throws typed errors for anything else. */
function readEntries(res: ConsulResponse, previous?: ReadonlyMap<string, KvEntry>): KvEntry[] {
  assertStatus(res);
  const body = parseBody(res, 'KV answer');
  if (Array.isArray(body)) {
    const entries: KvEntry[] = [];
    for (const item of body as unknown[]) {
      const key = (item as { Key?: unknown } | null)?.Key;
      const entry = fastEntry(item, typeof key === 'string' ? previous?.get(key) : undefined);
      if (!entry) break;
      entries.push(entry);
    }
    if (entries.length === body.length) return entries;
  }
  // Something is off: let zod say what.
  const parsed = KvGetWireSchema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidResponseError(
      `KV answer is not a list of KV entries: ${parsed.error.issues[0]?.message ?? ''}`,
      { status: res.status },
    );
  }
  return parsed.data.map((wire) => ({
    key: wire.Key,
    valueBase64: wire.Value ?? null,
    session: wire.Session ? wire.Session : null,
    flags: wire.Flags,
    lockIndex: wire.LockIndex,
    createIndex: wire.CreateIndex,
    modifyIndex: wire.ModifyIndex,
  }));
}

/** Interprets one answer for a single key: 404 is "missing"; other errors throw typed errors. */
export function readKvResponse(res: ConsulResponse, key: string): KvRead {
  if (res.status === 404) return KEY_MISSING;
  const entry = readEntries(res).find((e) => e.key === key);
  if (!entry) throw new InvalidResponseError(`KV answer does not hold the key ${JSON.stringify(key)}`);
  return { kind: 'entry', entry };
}

/**
 * The entries of a 2xx recursive answer, in Consul's order, all under `prefix`.
 * Entries of keys not written since `previous` are `previous`'s objects.
 */
export function readKvList(
  res: ConsulResponse,
  prefix: string,
  previous?: ReadonlyMap<string, KvEntry>,
): KvEntry[] {
  const entries = readEntries(res, previous);
  for (const entry of entries) {
    if (!entry.key.startsWith(prefix)) {
      throw new InvalidResponseError(`KV answer holds keys outside the prefix ${JSON.stringify(prefix)}`);
    }
  }
  return entries;
}

/** The keys of a `?keys` answer (404: none), in Consul's order. */
export function readKvKeys(res: ConsulResponse): string[] {
  if (res.status === 404) return [];
  assertStatus(res);
  const body = parseBody(res, 'KV keys answer');
  if (!Array.isArray(body) || !body.every((key): key is string => typeof key === 'string')) {
    throw new InvalidResponseError('KV keys answer is not a list of keys', { status: res.status });
  }
  return body;
}
