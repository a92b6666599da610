import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { formatWait, parseDurationMs } from './duration.js';

describe('parseDurationMs', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1m30s', 90_000],
    ['1.5s', 1_500],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['2h45m', 9_900_000],
    ['1s500ms', 1_500],
    ['250000us', 250],
    ['250000µs', 250],
    ['1000000ns', 1],
    ['0', 0],
    ['0s', 0],
    ['  30s  ', 30_000],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBeCloseTo(ms, 9);
  });

  it('takes numbers as milliseconds', () => {
    expect(parseDurationMs(0)).toBe(0);
    expect(parseDurationMs(1500)).toBe(1500);
    expect(parseDurationMs(0.5)).toBe(0.5);
  });

  it.each([NaN, Infinity, -Infinity, -1])('refuses the number %d', (n) => {
    expect(parseDurationMs(n)).toBeNaN();
  });

  it.each([
    '',
    '   ',
    '30',
    's',
    'ms',
    '-5s',
    '+5s',
    '5 s',
    '5S',
    '5sec',
    '1d',
    'abc',
    '30s ago',
    '1.s',
    'Infinity',
    '1e3ms',
    '5m 30s',
  ])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeNaN();
  });

  it('property: a sum of Go duration parts parses to the sum of their ms', () => {
    const units = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom('h', 'm', 's', 'ms' as const)),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (parts) => {
          const text = parts.map(([n, u]) => `${n}${u}`).join('');
          const ms = parts.reduce((sum, [n, u]) => sum + n * units[u], 0);
          expect(parseDurationMs(text)).toBe(ms);
        },
      ),
    );
  });

  it('property: whole ms written as "<n>ms" and formatWait agree', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600_000 }), (n) => {
        expect(parseDurationMs(formatWait(n))).toBe(n);
      }),
    );
  });
});

describe('formatWait', () => {
  it('writes whole milliseconds, as Consul accepts', () => {
    expect(formatWait(60_000)).toBe('60000ms');
    expect(formatWait(1500.4)).toBe('1500ms');
    expect(formatWait(1500.5)).toBe('1501ms');
  });

  it('never writes 0 (wait=0ms would not block)', () => {
    expect(formatWait(0)).toBe('1ms');
    expect(formatWait(0.2)).toBe('1ms');
  });
});
