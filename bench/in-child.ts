/**
 * The child process's side of bench/child.ts: answers the parent's requests,
 * and measures its own heap. Imports nothing that needs the parent's modules.
 */

export interface Envelope {
  readonly id: number;
  readonly body: unknown;
}
export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

/**
 * The child's side: answers each request with `handle`; on `{ type: 'exit' }`
 * calls `close` and exits.
 */
export function serveParent<Request extends { readonly type: string }>(
  handle: (request: Request) => Promise<unknown>,
  close: () => Promise<void>,
): void {
  if (!process.send) throw new Error('run through bench/child.ts (no IPC channel)');
  const send = (reply: Reply): void => {
    process.send?.(reply);
  };
  process.on('message', (envelope: Envelope) => {
    const request = envelope.body as Request;
    if (request.type === 'exit') {
      void close().finally(() => process.exit(0));
      return;
    }
    handle(request).then(
      (value) => send({ id: envelope.id, ok: true, value }),
      (error: unknown) =>
        send({
          id: envelope.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  // The parent went away without saying so: do not linger.
  process.on('disconnect', () => {
    void close().finally(() => process.exit(0));
  });
}

/** The heap after full collections, and the RSS then (needs --expose-gc). */
export async function settledMemory(): Promise<{ heapUsed: number; rss: number }> {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}
