import { describe, expect, it } from 'vitest';
import { AbortedError, TimeoutError, isLeaderDiscoveryError } from '../errors.js';
import { bounded } from './waits.js';

const never = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped'))));

describe('bounded()', () => {
  it('resolves with the wait, and aborts its signal once done', async () => {
    let inner: AbortSignal | undefined;
    const value = await bounded({ timeout: 1000 }, (signal) => {
      inner = signal;
      return Promise.resolve(42);
    });
    expect(value).toBe(42);
    expect(inner?.aborted).toBe(true);
  });

  it('rejects with AbortedError (ABORTED) when the caller aborts, and stops the wait', async () => {
    const controller = new AbortController();
    let inner: AbortSignal | undefined;
    const waiting = bounded({ signal: controller.signal }, (signal) => {
      inner = signal;
      return never(signal);
    });
    controller.abort(new Error('user went away'));
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(isLeaderDiscoveryError(error) && error.code).toBe('ABORTED');
    expect((error as AbortedError).cause).toEqual(new Error('user went away'));
    expect(inner?.aborted).toBe(true);
  });

  it('rejects at once for a signal already aborted', async () => {
    const error = await bounded({ signal: AbortSignal.abort() }, never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
  });

  it('rejects with TimeoutError (TIMEOUT) after the timeout, in ms or as a duration', async () => {
    for (const timeout of [20, '20ms']) {
      const started = Date.now();
      const error = await bounded({ timeout }, never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect(isLeaderDiscoveryError(error) && error.code).toBe('TIMEOUT');
      expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    }
  });

  it('leaves no listener on the caller signal', async () => {
    const controller = new AbortController();
    let listeners = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    const remove = controller.signal.removeEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners += 1;
      add(...args);
    }) as typeof add;
    controller.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners -= 1;
      remove(...args);
    }) as typeof remove;
    for (let i = 0; i < 20; i += 1) await bounded({ signal: controller.signal }, () => Promise.resolve(i));
    expect(listeners).toBe(0);
  });
});
