/**
 * Shapes of the Consul HTTP answers the SDK reads, as Consul sends them.
 * Indexes and flags are uint64 on the wire: they are read as bigint, never as
 * a JS number (see `readUint64Fields`).
 */
import { z } from 'zod/v4';

const UINT64_MAX = (1n << 64n) - 1n;

/** A uint64 from Consul: a bigint, or a decimal string or safe integer that becomes one. */
export const Uint64Schema = z.union([
  z.bigint().nonnegative().max(UINT64_MAX),
  z
    .string()
    .regex(/^\d{1,20}$/, 'expected a decimal uint64')
    .transform((s) => BigInt(s))
    .refine((n) => n <= UINT64_MAX, 'beyond uint64'),
  z
    .number()
    .int()
    .nonnegative()
    .refine((n) => Number.isSafeInteger(n), 'integer beyond 2^53: read it as a string')
    .transform((n) => BigInt(n)),
]);

/** One entry of `GET /v1/kv/<key>` (an array of these on 200). */
export const KvEntryWireSchema = z.object({
  Key: z.string(),
  /**
   * base64 of the stored bytes; null when the key holds no value. Not checked
   * here: a value that is not base64 is the leader's bad descriptor (an
   * `invalid` state), not a broken answer.
   */
  Value: z.string().nullable().optional(),
  /** The session holding the lock; absent or "" when unlocked. */
  Session: z.string().optional(),
  Flags: Uint64Schema,
  LockIndex: Uint64Schema,
  CreateIndex: Uint64Schema,
  ModifyIndex: Uint64Schema,
});
export type KvEntryWire = z.output<typeof KvEntryWireSchema>;
export const KvGetWireSchema = z.array(KvEntryWireSchema);

/** One entry of `GET /v1/session/info/<id>` (an empty array when the session is gone). */
export const SessionInfoWireSchema = z.object({
  ID: z.string().min(1),
  Name: z.string().default(''),
  Node: z.string(),
  /** Consul ≤ 1.10. */
  Checks: z.array(z.string()).nullable().optional(),
  /** Consul ≥ 1.7 (alongside or instead of Checks). */
  NodeChecks: z.array(z.string()).nullable().optional(),
  ServiceChecks: z
    .array(z.object({ ID: z.string(), Namespace: z.string().optional() }))
    .nullable()
    .optional(),
  /** Nanoseconds. */
  LockDelay: z.number().nonnegative(),
  Behavior: z.enum(['release', 'delete']),
  /** A Go duration ("15s"), or "" for a session without TTL. */
  TTL: z.string().default(''),
  Namespace: z.string().optional(),
  CreateIndex: Uint64Schema,
  ModifyIndex: Uint64Schema.optional(),
});
export type SessionInfoWire = z.output<typeof SessionInfoWireSchema>;
export const SessionInfoListWireSchema = z.array(SessionInfoWireSchema);

const UINT64_FIELD = /("(?:Flags|LockIndex|CreateIndex|ModifyIndex)"\s*:\s*)(\d+)/g;
const UINT64_NAMES = ['Flags', 'LockIndex', 'CreateIndex', 'ModifyIndex'] as const;

/** Whether a parsed Consul answer (a list of entries) holds a uint64 field JSON.parse rounded. */
function roundedUint64(parsed: unknown): boolean {
  if (!Array.isArray(parsed)) return false;
  for (const item of parsed as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    for (const name of UINT64_NAMES) {
      const value = (item as Record<string, unknown>)[name];
      if (typeof value === 'number' && !Number.isSafeInteger(value)) return true;
    }
  }
  return false;
}

/**
 * Parses a Consul JSON body keeping uint64 fields exact: JSON.parse would
 * round `Flags` such as consul lock's 0x2ddccbc058a50c18 to the nearest double.
 * Only then is the text parsed again with those fields quoted (the common case
 * pays for one native JSON.parse). The pattern only matches at object-key
 * position: inside a JSON string a quote is always escaped, and Consul's
 * base64 values hold no quotes.
 */
export function parseConsulJson(text: string): unknown {
  const parsed: unknown = JSON.parse(text);
  return roundedUint64(parsed) ? JSON.parse(text.replace(UINT64_FIELD, '$1"$2"')) : parsed;
}
