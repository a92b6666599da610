import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  ConsulHttpError,
  ConsulUnreachableError,
  InvalidResponseError,
  PermissionDeniedError,
} from '../errors.js';
import { DEFAULT_RETRY_POLICY } from '../config/defaults.js';
import { type RetryPolicy, retryDelayMs } from './retry-policy.js';

const policy: RetryPolicy = { initialDelayMs: 100, maxDelayMs: 1_000, permissionDeniedDelayMs: 7_000 };
const refused = new ConsulUnreachableError('refused', 'cannot reach Consul (refused)');
const fixed = (r: number) => () => r;

describe('retryDelayMs', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({
      initialDelayMs: 250,
      maxDelayMs: 5_000,
      permissionDeniedDelayMs: 10_000,
    });
    expect(Object.isFrozen(DEFAULT_RETRY_POLICY)).toBe(true);
  });

  it('doubles with each attempt until the cap (upper end of the jitter)', () => {
    const top = fixed(0.999999999);
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelayMs(a, refused, policy, top))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it('keeps half the delay fixed (lower end of the jitter)', () => {
    const bottom = fixed(0);
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, refused, policy, bottom))).toEqual([
      50, 100, 200, 400, 500,
    ]);
  });

  it('treats attempt 0 or below like the first attempt', () => {
    expect(retryDelayMs(0, refused, policy, fixed(0))).toBe(50);
    expect(retryDelayMs(-3, refused, policy, fixed(0))).toBe(50);
  });

  it('stays capped for huge attempt counts', () => {
    expect(retryDelayMs(10_000, refused, policy, fixed(0.5))).toBe(750);
    expect(retryDelayMs(Number.MAX_SAFE_INTEGER, refused, DEFAULT_RETRY_POLICY)).toBeLessThanOrEqual(5_000);
  });

  it('uses Math.random by default, within the jitter range', () => {
    for (let i = 0; i < 50; i += 1) {
      const d = retryDelayMs(3, refused, DEFAULT_RETRY_POLICY);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1_000);
    }
  });

  it('property: delay within [exp/2, exp], capped, and non-decreasing with the attempt', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        (attempt, r, initialDelayMs, maxDelayMs) => {
          const p: RetryPolicy = { initialDelayMs, maxDelayMs, permissionDeniedDelayMs: 0 };
          const exp = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
          const d = retryDelayMs(attempt, refused, p, fixed(r));
          expect(d).toBeGreaterThanOrEqual(Math.floor(exp / 2));
          expect(d).toBeLessThanOrEqual(Math.ceil(exp));
          expect(d).toBeLessThanOrEqual(maxDelayMs);
          expect(Number.isInteger(d)).toBe(true);
          expect(retryDelayMs(attempt + 1, refused, p, fixed(r))).toBeGreaterThanOrEqual(d);
        },
      ),
    );
  });

  it('waits permissionDeniedDelayMs after a 403, above the exponential cap', () => {
    const denied = new PermissionDeniedError('Consul refused the read (403: Permission denied)');
    expect(retryDelayMs(1, denied, policy, fixed(0))).toBe(7_000);
    expect(retryDelayMs(1, denied, DEFAULT_RETRY_POLICY, fixed(0.5))).toBe(10_000);
    // A 403 is not a ConsulHttpError: a plain 500 is not held back that long.
    expect(retryDelayMs(1, new ConsulHttpError(500, 'Consul answered HTTP 500'), policy, fixed(0))).toBe(50);
  });

  it('waits permissionDeniedDelayMs after a 400 too (a parameter the agent refuses, such as ?ns= on OSS)', () => {
    const refused = new ConsulHttpError(400, 'Namespaces are a Consul Enterprise feature');
    expect(retryDelayMs(1, refused, policy, fixed(0))).toBe(7_000);
    expect(retryDelayMs(1, new ConsulHttpError(404, 'odd'), policy, fixed(0))).toBe(50);
  });

  it('keeps the exponential delay after a 403 when it is longer than permissionDeniedDelayMs', () => {
    const denied = new PermissionDeniedError('denied');
    const p: RetryPolicy = { initialDelayMs: 1_000, maxDelayMs: 60_000, permissionDeniedDelayMs: 2_000 };
    expect(retryDelayMs(6, denied, p, fixed(0))).toBe(16_000);
  });

  it('honours Retry-After when it is longer than the backoff', () => {
    const throttled = new ConsulHttpError(429, 'Consul answered HTTP 429', 20_000);
    expect(retryDelayMs(1, throttled, policy, fixed(0))).toBe(20_000);
  });

  it('keeps the backoff when Retry-After is shorter', () => {
    const throttled = new ConsulHttpError(503, 'Consul answered HTTP 503', 10);
    expect(retryDelayMs(4, throttled, policy, fixed(0))).toBe(400);
  });

  it('caps Retry-After at 300 s', () => {
    const hostile = new ConsulHttpError(429, 'Consul answered HTTP 429', 86_400_000);
    expect(retryDelayMs(1, hostile, policy, fixed(0))).toBe(300_000);
    expect(retryDelayMs(1, new ConsulHttpError(429, 'x', 300_000), policy, fixed(0))).toBe(300_000);
  });

  it('ignores retryAfterMs-like fields on other errors', () => {
    const other = Object.assign(new InvalidResponseError('bad'), { retryAfterMs: 100_000 });
    expect(retryDelayMs(1, other, policy, fixed(0))).toBe(50);
    expect(retryDelayMs(1, { retryAfterMs: 100_000 }, policy, fixed(0))).toBe(50);
  });
});
