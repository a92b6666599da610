/** Reading `GET /v1/session/info/<id>` answers into a `LeaderSession` (or null when gone). */
import { SessionInfoListWireSchema, type SessionInfoWire } from '@consul-leader/types';
import type { LeaderSession } from '@consul-leader/types';
import { InvalidResponseError } from '../errors.js';
import { parseDurationMs } from './duration.js';
import { parseBody } from './kv.js';
import type { ConsulResponse } from './transport.js';
import { assertStatus } from './status.js';
import { readUint64 } from './uint64.js';

const isStrings = (v: unknown): v is string[] | null | undefined =>
  v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'));

/** A session checked by hand (the common case), or undefined to let zod explain what is wrong. */
function fastSession(value: unknown): SessionInfoWire | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const { ID, Name, Node, Checks, NodeChecks, ServiceChecks, LockDelay, Behavior, TTL, Namespace } = o;
  if (typeof ID !== 'string' || ID === '' || typeof Node !== 'string') return undefined;
  if ((Name !== undefined && typeof Name !== 'string') || (TTL !== undefined && typeof TTL !== 'string'))
    return undefined;
  if (
    !isStrings(Checks) ||
    !isStrings(NodeChecks) ||
    (ServiceChecks !== undefined && ServiceChecks !== null)
  ) {
    return undefined; // service checks (objects) are rare: zod reads them
  }
  if (typeof LockDelay !== 'number' || LockDelay < 0 || (Behavior !== 'release' && Behavior !== 'delete'))
    return undefined;
  if (Namespace !== undefined && typeof Namespace !== 'string') return undefined;
  const createIndex = readUint64(o.CreateIndex);
  const modifyIndex = o.ModifyIndex === undefined ? undefined : readUint64(o.ModifyIndex);
  if (createIndex === undefined || (o.ModifyIndex !== undefined && modifyIndex === undefined))
    return undefined;
  return {
    ID,
    Name: Name ?? '',
    Node,
    Checks,
    NodeChecks,
    LockDelay,
    Behavior,
    TTL: TTL ?? '',
    ...(Namespace === undefined ? {} : { Namespace }),
    CreateIndex: createIndex,
    ...(modifyIndex === undefined ? {} : { ModifyIndex: modifyIndex }),
  };
}

function readSessions(res: ConsulResponse, what: string): SessionInfoWire[] {
  assertStatus(res);
  const body = parseBody(res, what);
  if (Array.isArray(body)) {
    const sessions = (body as unknown[]).map(fastSession);
    if (sessions.every((s) => s !== undefined)) return sessions;
  }
  const parsed = SessionInfoListWireSchema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidResponseError(
      `${what} is not a list of sessions: ${parsed.error.issues[0]?.message ?? ''}`,
      { status: res.status },
    );
  }
  return parsed.data;
}

function toLeaderSession(wire: SessionInfoWire): LeaderSession {
  const ttlMs = wire.TTL ? parseDurationMs(wire.TTL) : NaN;
  // Any of these invalidates the session when critical (Consul's Session.CheckIDs merges them).
  const checks = [
    ...new Set([
      ...(wire.Checks ?? []),
      ...(wire.NodeChecks ?? []),
      ...(wire.ServiceChecks ?? []).map((c) => c.ID),
    ]),
  ];
  return {
    id: wire.ID,
    name: wire.Name,
    node: wire.Node,
    checks,
    behavior: wire.Behavior,
    ttl: wire.TTL,
    ttlMs: Number.isNaN(ttlMs) ? null : ttlMs,
    lockDelayMs: wire.LockDelay / 1e6,
    createIndex: wire.CreateIndex,
    modifyIndex: wire.ModifyIndex ?? wire.CreateIndex,
    ...(wire.Namespace ? { namespace: wire.Namespace } : {}),
  };
}

/**
 * `[]` means the session no longer exists. (It also means "not allowed" when the
 * token lacks `session_prefix` read: Consul 1.8 filters instead of refusing.)
 */
export function readSessionResponse(res: ConsulResponse, id: string): LeaderSession | null {
  const sessions = readSessions(res, 'session info');
  const wire = sessions.find((s) => s.ID === id) ?? null;
  if (sessions.length > 0 && !wire) {
    throw new InvalidResponseError('session info answer is about another session');
  }
  return wire ? toLeaderSession(wire) : null;
}

/** `GET /v1/session/list`: every session of the datacenter (that the token may read), by id. */
export function readSessionListResponse(res: ConsulResponse): Map<string, LeaderSession> {
  return new Map(readSessions(res, 'session list').map((wire) => [wire.ID, toLeaderSession(wire)]));
}
