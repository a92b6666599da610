/** What a reverse proxy changes in the headers it passes on (RFC 9110 7.6.1, and the X-Forwarded-* habit). */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Hop-by-hop headers: they describe one connection and are never passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect', // the proxy answers `Expect: 100-continue` itself (node:http does)
]);

/** `headers` without the hop-by-hop ones, and without those `Connection` names. */
export function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The headers of the request sent on to the leader: end-to-end ones, `X-Forwarded-For`
 * appended to (a chain of proxies keeps its list), `-Proto` and `-Host` set by this hop.
 * `Host` is the leader's origin unless `preserveHost`.
 */
export function forwardedHeaders(
  req: IncomingMessage,
  preserveHost: boolean,
): Record<string, string | string[]> {
  const headers = endToEnd(req.headers);
  if (!preserveHost) delete headers.host;
  const previous = [req.headers['x-forwarded-for']].flat().filter((v): v is string => Boolean(v));
  const address = req.socket.remoteAddress;
  const chain = [...previous, ...(address ? [address] : [])];
  if (chain.length > 0) headers['x-forwarded-for'] = chain.join(', ');
  headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  return headers;
}

/** The leader's answer headers as passed back to the client. */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  return endToEnd(headers as IncomingHttpHeaders);
}
