/** How the proxy answers a request it could not forward: the status, and a body with the code. */
import type { LeaderDiscoveryError } from '../errors.js';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The status a failed forward is answered with. */
export function proxyStatus(error: LeaderDiscoveryError): 502 | 503 | 504 {
  if (error.code === 'NO_LEADER' || error.code === 'DISCOVERY_CLOSED') return 503;
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && TIMEOUT_CODES.has(code) ? 504 : 502;
}

const GENERIC: Record<502 | 503 | 504, string> = {
  502: 'the leader did not answer',
  503: 'no leader to forward to',
  504: 'the leader did not answer in time',
};

/** The body of an error answer: the code to switch on; no internal address. */
export function errorAnswer(error: LeaderDiscoveryError): { status: 502 | 503 | 504; body: string } {
  const status = proxyStatus(error);
  return { status, body: JSON.stringify({ error: { code: error.code, message: GENERIC[status] } }) };
}
