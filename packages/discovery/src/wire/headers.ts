/** Reading Consul's `X-Consul-*` response headers. */
import type { IncomingHttpHeaders } from 'node:http';
import type { ConsulReadMeta } from '@consul-leader/types';
import { InvalidResponseError } from '../errors.js';
import { readUint64 } from './uint64.js';

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The answer's `X-Consul-Index` as an exact uint64. Every Consul read answer
 * carries it (404 included), so its absence means the answer did not come from
 * Consul's blocking-query machinery and must not be trusted.
 */
export function readIndex(headers: IncomingHttpHeaders): bigint {
  const raw = header(headers, 'x-consul-index');
  if (raw === undefined) throw new InvalidResponseError('answer has no X-Consul-Index header');
  const text = raw.trim();
  const index = readUint64(text);
  if (index !== undefined) return index;
  const why = /^\d+$/.test(text)
    ? 'is beyond uint64'
    : `is not a uint64: ${JSON.stringify(raw.slice(0, 40))}`;
  throw new InvalidResponseError(`X-Consul-Index ${why}`);
}

export function readMeta(headers: IncomingHttpHeaders, index: bigint): ConsulReadMeta {
  const lastContact = Number(header(headers, 'x-consul-lastcontact') ?? '0');
  return {
    index,
    lastContactMs: Number.isFinite(lastContact) && lastContact >= 0 ? lastContact : 0,
    knownLeader: header(headers, 'x-consul-knownleader') !== 'false',
  };
}

/** `Retry-After` (seconds or an HTTP date) in ms, if present and sane. */
export function readRetryAfterMs(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const raw = header(headers, 'retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
