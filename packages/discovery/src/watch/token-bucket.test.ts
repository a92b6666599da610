import { describe, it, expect } from 'vitest';
import { TokenBucket } from './token-bucket.js';

function clock(start = 1_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('TokenBucket', () => {
  it('lets `burst` takes through at once, then asks to wait 1/perSecond per token', () => {
    const c = clock();
    const bucket = new TokenBucket(5, 2, c.now);
    expect([1, 2, 3, 4, 5].map(() => bucket.take())).toEqual([0, 0, 0, 0, 0]);
    expect(bucket.take()).toBe(500);
    expect(bucket.take()).toBe(1_000);
    expect(bucket.take()).toBe(1_500);
  });

  it('refills at perSecond', () => {
    const c = clock();
    const bucket = new TokenBucket(2, 4, c.now);
    bucket.take();
    bucket.take();
    expect(bucket.take()).toBe(250);
    // The caller waited the 250 ms it was told to: the next token is 250 ms away again.
    c.advance(250);
    expect(bucket.take()).toBe(250);
    c.advance(250);
    c.advance(250);
    expect(bucket.take()).toBe(0);
  });

  it('sustains perSecond when the caller sleeps as told', () => {
    const c = clock();
    const bucket = new TokenBucket(3, 2, c.now);
    let takes = 0;
    // Simulate 10 s of a loop that takes, sleeps the returned delay, and takes again.
    while (c.now() < 1_000 + 10_000) {
      const wait = bucket.take();
      takes += 1;
      c.advance(wait);
    }
    // 3 at once + 2 per second for 10 s (one more token may land exactly at the end).
    expect(takes).toBeGreaterThanOrEqual(3 + 20 - 1);
    expect(takes).toBeLessThanOrEqual(3 + 20 + 1);
  });

  it('never stores more than `burst` tokens after a long idle time', () => {
    const c = clock();
    const bucket = new TokenBucket(3, 2, c.now);
    c.advance(3_600_000);
    expect([1, 2, 3].map(() => bucket.take())).toEqual([0, 0, 0]);
    expect(bucket.take()).toBe(500);
  });

  it('rounds waits up to whole milliseconds', () => {
    const c = clock();
    const bucket = new TokenBucket(1, 3, c.now);
    bucket.take();
    expect(bucket.take()).toBe(334);
  });

  it('defaults to performance.now', () => {
    const bucket = new TokenBucket(1, 1);
    expect(bucket.take()).toBe(0);
    const wait = bucket.take();
    expect(wait).toBeGreaterThan(900);
    expect(wait).toBeLessThanOrEqual(1_000);
  });
});
