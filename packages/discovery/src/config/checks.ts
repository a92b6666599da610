/**
 * What Consul and Node can take, checked before anything is sent: a key or prefix the KV
 * endpoint can serve, and a token or credentials a header can carry. Refused at once as
 * INVALID_OPTION, rather than retried forever.
 */
import { InvalidOptionError } from '../errors.js';

// Node sends no other header value (ERR_INVALID_CHAR): tab, visible ASCII and Latin-1.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Throws INVALID_OPTION, naming `source` (`options.token`, `CONSUL_HTTP_TOKEN`, ...) but
 * never the token, when `token` cannot travel in the `X-Consul-Token` header.
 */
export function checkToken(source: string, token: string | undefined, what = 'an ACL token'): void {
  if (token === undefined || HEADER_VALUE.test(token)) return;
  throw new InvalidOptionError(
    `invalid option ${source}: ${what} must be a valid HTTP header value (it holds a line break, ` +
      'another control character or a character beyond Latin-1; not shown)',
  );
}

/** What follows: a single key, or every key under a prefix. */
export type KeyKind = 'key' | 'prefix';

/**
 * Throws INVALID_OPTION unless `key` is a key (or prefix) Consul's KV endpoint can
 * serve: Consul redirects paths with empty, `.` or `..` segments (301) and refuses
 * control characters (400), which would otherwise be retried forever.
 */
export function checkKey(kind: KeyKind, key: unknown): asserts key is string {
  const fail = (why: string): never => {
    const shown = typeof key === 'string' ? ` ${JSON.stringify(key)}` : '';
    throw new InvalidOptionError(`invalid option ${kind}${shown}: ${why}`);
  };
  if (typeof key !== 'string') return fail('must be a string');
  if (key.length === 0) {
    return fail(
      kind === 'prefix'
        ? 'must not be empty (the whole KV store is not followed: give a folder, such as "service/")'
        : 'must not be empty',
    );
  }
  if (key.startsWith('/')) return fail('must not start with "/"');
  if (CONTROL.test(key)) return fail('must not hold a control character (Consul refuses it)');
  const segments = key.split('/');
  segments.forEach((segment, i) => {
    // A trailing "/" (a folder key, or a prefix that is a folder) is fine; "a//b" is not.
    if (segment === '' && i < segments.length - 1) fail('must not hold an empty segment ("//")');
    if (segment === '.' || segment === '..') {
      fail(`must not hold a "${segment}" segment (Consul's HTTP API redirects such a path)`);
    }
  });
}
