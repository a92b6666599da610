/** Turning Consul's HTTP error statuses into typed errors. */
import { ConsulHttpError, PermissionDeniedError } from '../errors.js';
import type { ConsulResponse } from './transport.js';
import { readRetryAfterMs } from './headers.js';

/** Consul's error bodies are short plain text ("Permission denied", "ACL not found"); keep a line of it. */
function bodyText(res: ConsulResponse): string {
  const text = res.body.subarray(0, 512).toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Throws the typed error for a non-2xx answer that `allowed` does not list. */
export function assertStatus(res: ConsulResponse, allowed: readonly number[] = []): void {
  if ((res.status >= 200 && res.status < 300) || allowed.includes(res.status)) return;
  const detail = bodyText(res);
  if (res.status === 403) {
    throw new PermissionDeniedError(`Consul refused the read (403${detail ? `: ${detail}` : ''})`);
  }
  throw new ConsulHttpError(
    res.status,
    `Consul answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`,
    readRetryAfterMs(res.headers),
  );
}
