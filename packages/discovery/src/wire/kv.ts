/** Reading `GET /v1/kv/<key>` answers into a `KvRead`. */
import { KvGetWireSchema, parseConsulJson } from '@consul-leader/types';
import type { LeaderEntry } from '@consul-leader/types';
import { InvalidResponseError } from '../errors.js';
import type { ConsulResponse } from './transport.js';
import { assertStatus } from './status.js';

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

/** The entries of a 2xx KV answer, validated; throws typed errors for anything else. */
function readEntries(res: ConsulResponse): KvEntry[] {
  assertStatus(res);
  const parsed = KvGetWireSchema.safeParse(parseBody(res, 'KV answer'));
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

/** Interprets a recursive answer (`?recurse`) for a prefix: 404 is "no keys". */
export function readKvListResponse(res: ConsulResponse, prefix: string): KvEntry[] {
  if (res.status === 404) return [];
  const entries = readEntries(res);
  if (entries.some((e) => !e.key.startsWith(prefix))) {
    throw new InvalidResponseError(`KV answer holds keys outside the prefix ${JSON.stringify(prefix)}`);
  }
  return entries;
}
