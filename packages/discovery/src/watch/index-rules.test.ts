import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { NO_INDEX, nextIndex } from './index-rules.js';

const UINT64_MAX = (1n << 64n) - 1n;
const uint64 = fc.bigInt({ min: 0n, max: UINT64_MAX });

describe('nextIndex', () => {
  it('follows the received index when it moves forward or stays', () => {
    expect(nextIndex(0n, 14n)).toBe(14n);
    expect(nextIndex(14n, 14n)).toBe(14n);
    expect(nextIndex(14n, 15n)).toBe(15n);
    expect(nextIndex(1n, UINT64_MAX)).toBe(UINT64_MAX);
  });

  it('resets to a non-blocking read (0) when the index goes backwards', () => {
    expect(NO_INDEX).toBe(0n);
    expect(nextIndex(15n, 14n)).toBe(NO_INDEX);
    expect(nextIndex(UINT64_MAX, UINT64_MAX - 1n)).toBe(0n);
  });

  it('never blocks on index 0', () => {
    expect(nextIndex(0n, 0n)).toBe(1n);
  });

  it('is exact beyond 2^53 (no rounding to a double)', () => {
    const big = 9007199254740993n; // 2^53 + 1
    expect(nextIndex(big - 1n, big)).toBe(big);
    expect(nextIndex(big, big - 1n)).toBe(0n);
  });

  it('property: backwards → 0, else max(received, 1)', () => {
    fc.assert(
      fc.property(uint64, uint64, (sent, received) => {
        const next = nextIndex(sent, received);
        if (received < sent) expect(next).toBe(0n);
        else expect(next).toBe(received > 0n ? received : 1n);
      }),
    );
  });

  it('property: a forward answer never yields 0 and never exceeds what was received (except 0 → 1)', () => {
    fc.assert(
      fc.property(uint64, uint64, (a, b) => {
        const [sent, received] = a <= b ? [a, b] : [b, a];
        const next = nextIndex(sent, received);
        expect(next > 0n).toBe(true);
        expect(next <= (received === 0n ? 1n : received)).toBe(true);
        expect(next >= sent).toBe(true);
      }),
    );
  });
});
