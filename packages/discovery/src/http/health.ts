/**
 * A readiness endpoint for load balancers: can this process route to the leader right
 * now? `http.createServer(leaderHealth(handle)).listen(8081)`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bigintReplacer } from '@consul-leader/types';
import { type LeaderHandle, leaderSince } from '../state/follow-handle.js';
import { jsonOr, unwritable } from '../state/writable-state.js';

/** The statuses of `leaderHealth()`'s answers. */
export interface LeaderHealthOptions {
  /** Status while the key has no leader (vacant, invalid, or before Consul's first answer). Default 503. */
  readonly vacantStatus?: number;
  /**
   * Status while Consul cannot be read but the last leader is kept (what a proxy routes to).
   * Default 200; `503` is the stricter choice. With no leader kept, `vacantStatus`.
   */
  readonly unreachableStatus?: number;
}

/** The JSON body of the health endpoint. */
export interface LeaderHealthBody {
  /** The key the handle follows. */
  readonly key: string;
  /** The key's state (`watch()`'s status), or `unknown` before Consul's first answer. */
  readonly status: 'leader' | 'vacant' | 'invalid' | 'unreachable' | 'unknown';
  /** The leader routed to (kept while Consul cannot be read), or null. */
  readonly leader: { readonly sessionId: string; readonly node: unknown } | null;
  /** When this process saw the leader (or its absence) begin, ISO 8601. */
  readonly since: string;
  /** What Consul's last answer said of its own Raft leader, or null before any. */
  readonly consul: { readonly lastContactMs: number; readonly knownLeader: boolean } | null;
}

/** A `node:http` (Express, Connect) handler answering the handle's health as JSON. */
export function leaderHealth<T>(
  handle: LeaderHandle<T>,
  options: LeaderHealthOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const vacantStatus = options.vacantStatus ?? 503;
  const unreachableStatus = options.unreachableStatus ?? 200;
  // Without a subscription of its own: the handle keeps the time (closing it stops everything).
  const created = new Date();

  const bodyOf = (): { status: number; body: LeaderHealthBody } => {
    const state = handle.state;
    const leader = handle.current;
    const settled = state?.status === 'unreachable' ? state.lastKnown : state;
    const body: LeaderHealthBody = {
      key: handle.key,
      status: state?.status ?? 'unknown',
      leader: leader ? { sessionId: leader.session.id, node: leader.node } : null,
      since: (leaderSince(handle) ?? created).toISOString(),
      consul: settled
        ? { lastContactMs: settled.consul.lastContactMs, knownLeader: settled.consul.knownLeader }
        : null,
    };
    if (!leader) return { status: vacantStatus, body };
    return { status: state?.status === 'unreachable' ? unreachableStatus : 200, body };
  };

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const { status, body } = bodyOf();
    // Whoever writes the key writes `node`: a descriptor JSON cannot hold is left out, said why.
    const text = jsonOr(body, bigintReplacer, () => ({
      ...body,
      leader: body.leader && { sessionId: body.leader.sessionId, node: null },
      error: { code: 'INVALID_DESCRIPTOR', message: unwritable(body.leader?.node, bigintReplacer) },
    }));
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}
