import { describe, expect, it } from 'vitest';
import { Observable, Subject, finalize } from 'rxjs';
import { latestValues, live } from './live.js';

describe('live(): an Observable that for await reads', () => {
  it('is the same Observable, also AsyncIterable', () => {
    const source = new Subject<number>();
    const made = live(source.asObservable());
    expect(typeof made.subscribe).toBe('function');
    expect(typeof made[Symbol.asyncIterator]).toBe('function');
  });

  it('gives the newest value at each step, never a backlog', async () => {
    const source = new Subject<number>();
    const values = latestValues(source);
    const first = values.next();
    source.next(1);
    expect(await first).toEqual({ done: false, value: 1 });
    // A slow consumer: three values while it was away, it gets the last.
    source.next(2);
    source.next(3);
    source.next(4);
    expect(await values.next()).toEqual({ done: false, value: 4 });
    const pending = values.next();
    source.next(5);
    expect(await pending).toEqual({ done: false, value: 5 });
  });

  it('unsubscribes on break, and ends when the stream completes', async () => {
    let finalized = 0;
    const source = new Subject<number>();
    const stream = live(source.pipe(finalize(() => (finalized += 1))));
    const seen: number[] = [];
    setTimeout(() => source.next(7), 1);
    for await (const value of stream) {
      seen.push(value);
      break;
    }
    expect(seen).toEqual([7]);
    expect(finalized).toBe(1);
    expect(source.observed).toBe(false);

    const ending = new Subject<number>();
    const all: number[] = [];
    setTimeout(() => {
      ending.next(1);
      ending.complete();
    }, 1);
    for await (const value of live(ending.asObservable())) all.push(value);
    expect(all).toEqual([1]);
  });

  it('rejects with the stream error', async () => {
    const failing = new Observable<number>((subscriber) => subscriber.error(new Error('boom')));
    await expect(latestValues(failing).next()).rejects.toThrow('boom');
  });
});
