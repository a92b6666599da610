/** Reading `GET /v1/session/info/<id>` answers into a `LeaderSession` (or null when gone). */
import { SessionInfoListWireSchema } from '@consul-leader/types';
import type { LeaderSession } from '@consul-leader/types';
import { InvalidResponseError } from '../errors.js';
import { parseDurationMs } from './duration.js';
import { parseBody } from './kv.js';
import type { ConsulResponse } from './transport.js';
import { assertStatus } from './status.js';

/**
 * `[]` means the session no longer exists. (It also means "not allowed" when the
 * token lacks `session_prefix` read: Consul 1.8 filters instead of refusing.)
 */
export function readSessionResponse(res: ConsulResponse, id: string): LeaderSession | null {
  assertStatus(res);
  const parsed = SessionInfoListWireSchema.safeParse(parseBody(res, 'session info'));
  if (!parsed.success) {
    throw new InvalidResponseError(
      `session info is not a list of sessions: ${parsed.error.issues[0]?.message ?? ''}`,
      { status: res.status },
    );
  }
  const wire = parsed.data.find((s) => s.ID === id) ?? null;
  if (parsed.data.length > 0 && !wire) {
    throw new InvalidResponseError('session info answer is about another session');
  }
  if (!wire) return null;
  const ttlMs = wire.TTL ? parseDurationMs(wire.TTL) : NaN;
  // Any of these invalidates the session when critical (Consul's Session.CheckIDs merges them).
  const checks = [
    ...new Set([
      ...(wire.Checks ?? []),
      ...(wire.NodeChecks ?? []),
      ...(wire.ServiceChecks ?? []).map((c) => c.ID),
    ]),
  ];
  const session: LeaderSession = {
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
  return session;
}
