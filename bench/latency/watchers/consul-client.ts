/** Reading the `consul` package's decoded answers (its types omit `Session`). */
import type { KvHolder } from '../http.js';

/** A `consul.kv.get` result (`Value` already decoded to text) as holder and value; null when missing. */
export function holderOf(entry: unknown): KvHolder | null {
  if (typeof entry !== 'object' || entry === null) return null;
  const session = 'Session' in entry && typeof entry.Session === 'string' ? entry.Session : null;
  const valueText = 'Value' in entry && typeof entry.Value === 'string' ? entry.Value : null;
  return { session, valueText };
}

/** Whether a `consul.session.info` result is a live session (it is `undefined` when the session is gone). */
export function isSession(info: unknown): boolean {
  return typeof info === 'object' && info !== null && 'ID' in info;
}
