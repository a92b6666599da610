/**
 * Fails a test during which a promise rejection went unhandled (the SDK must leave none, even
 * under faults), rather than the run at its end with no test to blame.
 */
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { delay } from './recorder.js';

/**
 * Listens for unhandled rejections while the enclosing describe (or file) runs, and checks
 * after each test that there was none. Call it before the file's own afterEach: it then runs
 * after theirs (which may close what the test opened).
 */
export function failOnUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    // A rejection of the test's last requests surfaces a tick or two later.
    await delay(50);
    expect(unhandled.splice(0)).toEqual([]);
  });
}
