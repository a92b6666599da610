import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { InvalidResponseError } from '../errors.js';
import { readIndex, readMeta, readRetryAfterMs } from './headers.js';

const UINT64_MAX = (1n << 64n) - 1n;

describe('readIndex', () => {
  it('reads an exact uint64 beyond 2^53', () => {
    expect(readIndex({ 'x-consul-index': '18446744073709551615' })).toBe(UINT64_MAX);
    expect(readIndex({ 'x-consul-index': '9007199254740993' })).toBe(9007199254740993n);
    expect(readIndex({ 'x-consul-index': '0' })).toBe(0n);
  });

  it('property: every uint64 written in decimal reads back exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: UINT64_MAX }), (n) => {
        expect(readIndex({ 'x-consul-index': n.toString() })).toBe(n);
      }),
    );
  });

  it('takes the first value of a repeated header', () => {
    expect(readIndex({ 'x-consul-index': ['7', '8'] as unknown as string })).toBe(7n);
  });

  it('throws InvalidResponseError when the header is missing', () => {
    expect(() => readIndex({})).toThrow(InvalidResponseError);
    expect(() => readIndex({ 'content-type': 'application/json' })).toThrow(/X-Consul-Index/);
    try {
      readIndex({});
    } catch (error) {
      expect((error as InvalidResponseError).code).toBe('INVALID_RESPONSE');
    }
  });

  it.each(['', 'abc', '-1', '1e3', '0x10', '12.0', '1 2', '١٢'])('throws on the non-uint64 %j', (raw) => {
    expect(() => readIndex({ 'x-consul-index': raw })).toThrow(InvalidResponseError);
  });

  it('throws beyond uint64', () => {
    expect(() => readIndex({ 'x-consul-index': '18446744073709551616' })).toThrow(/beyond uint64/);
    expect(() => readIndex({ 'x-consul-index': '99999999999999999999' })).toThrow(InvalidResponseError);
    expect(() => readIndex({ 'x-consul-index': '123456789012345678901' })).toThrow(InvalidResponseError);
  });

  it('quotes at most 40 characters of a bad header', () => {
    try {
      readIndex({ 'x-consul-index': 'x'.repeat(1000) });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(100);
    }
  });
});

describe('readMeta', () => {
  it('reads last contact and known leader', () => {
    expect(
      readMeta({ 'x-consul-lastcontact': '42', 'x-consul-knownleader': 'true' }, 18446744073709551615n),
    ).toEqual({ index: 18446744073709551615n, lastContactMs: 42, knownLeader: true });
    expect(readMeta({ 'x-consul-lastcontact': '0', 'x-consul-knownleader': 'false' }, 5n)).toEqual({
      index: 5n,
      lastContactMs: 0,
      knownLeader: false,
    });
  });

  it('defaults when the headers are absent or garbled', () => {
    expect(readMeta({}, 1n)).toEqual({ index: 1n, lastContactMs: 0, knownLeader: true });
    expect(readMeta({ 'x-consul-lastcontact': 'soon' }, 1n).lastContactMs).toBe(0);
    expect(readMeta({ 'x-consul-lastcontact': '-5' }, 1n).lastContactMs).toBe(0);
  });
});

describe('readRetryAfterMs', () => {
  it('reads delay-seconds', () => {
    expect(readRetryAfterMs({ 'retry-after': '120' })).toBe(120_000);
    expect(readRetryAfterMs({ 'retry-after': ' 3 ' })).toBe(3_000);
    expect(readRetryAfterMs({ 'retry-after': '0' })).toBe(0);
  });

  it('reads an HTTP date relative to now', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:27:30 GMT');
    expect(readRetryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, now)).toBe(30_000);
  });

  it('reads a past HTTP date as 0', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:29:00 GMT');
    expect(readRetryAfterMs({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, now)).toBe(0);
  });

  it('is undefined when absent, empty or not a date', () => {
    expect(readRetryAfterMs({})).toBeUndefined();
    expect(readRetryAfterMs({ 'retry-after': '' })).toBeUndefined();
    expect(readRetryAfterMs({ 'retry-after': '   ' })).toBeUndefined();
    expect(readRetryAfterMs({ 'retry-after': 'whenever you like' })).toBeUndefined();
  });
});
