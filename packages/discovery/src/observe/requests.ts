/**
 * What the telemetry learns of each request to Consul: what was read, and how the request
 * ended, once its answer was read (an answer that fails to read ends as INVALID_RESPONSE).
 */
import { asLeaderError } from '../errors.js';
import { readMeta } from '../wire/headers.js';
import { RequestAbortedError } from '../wire/transport.js';
import type { ConsulResponse } from '../wire/transport.js';
import { readUint64 } from '../wire/uint64.js';
import type { RequestResult, TrackRequest } from './request-types.js';

export type {
  RequestInfo,
  RequestKind,
  RequestOutcome,
  RequestResult,
  TrackRequest,
} from './request-types.js';

export const ABORTED: RequestResult = Object.freeze({ outcome: 'aborted' });

/** The result of an answer that was read. */
export function answered(response: ConsulResponse): RequestResult {
  const raw = response.headers['x-consul-index'];
  const resultIndex = readUint64(Array.isArray(raw) ? raw[0] : raw);
  const hasContact = response.headers['x-consul-lastcontact'] !== undefined;
  return {
    outcome: response.status === 404 ? 'not_found' : 'ok',
    statusCode: response.status,
    ...(resultIndex === undefined ? {} : { resultIndex }),
    ...(hasContact ? { lastContactMs: readMeta(response.headers, 0n).lastContactMs } : {}),
  };
}

/** The result of a request that failed: in transport, or its answer did not read. */
export function failed(caught: unknown, response: ConsulResponse | undefined): RequestResult {
  if (caught instanceof RequestAbortedError) return ABORTED;
  const error = asLeaderError(caught);
  const statusCode = response?.status ?? error.status;
  const contact = response?.headers['x-consul-lastcontact'] !== undefined;
  return {
    outcome: error.code,
    error,
    ...(statusCode === undefined ? {} : { statusCode }),
    ...(contact && response ? { lastContactMs: readMeta(response.headers, 0n).lastContactMs } : {}),
  };
}

/** One non-blocking read, sent and read, its telemetry ended when it is read. */
export async function trackedRead<T>(
  track: TrackRequest | undefined,
  send: () => Promise<ConsulResponse>,
  read: (response: ConsulResponse) => T,
): Promise<T> {
  const end = track?.(false, 0n);
  let response: ConsulResponse | undefined;
  try {
    response = await send();
    const value = read(response);
    end?.(answered(response));
    return value;
  } catch (caught) {
    end?.(failed(caught, response));
    throw caught;
  }
}
