import { describe, expect, it } from 'vitest';
import { PendingReads } from './pending-reads.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('PendingReads', () => {
  it('asks for no wait when nothing is pending', () => {
    expect(new PendingReads().settled()).toBeUndefined();
  });

  it('settles once every tracked read settled, rejected ones included, and hands reads back unchanged', async () => {
    const reads = new PendingReads();
    const a = deferred<string>();
    const b = deferred<string>();
    expect(reads.track(a.promise)).toBe(a.promise);
    reads.track(b.promise).catch(() => undefined);
    let settled = false;
    void reads.settled()?.then(() => (settled = true));
    a.resolve('a');
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBe(false);
    b.reject(new Error('b failed'));
    await expect(reads.settled()).resolves.toBeUndefined();
    expect(settled).toBe(true);
    expect(reads.settled()).toBeUndefined();
  });
});
