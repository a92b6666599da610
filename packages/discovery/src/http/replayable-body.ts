/**
 * A request body that can be sent again. Bytes (strings, buffers, blobs, form data) are
 * sent as they are each time. A stream is streamed, never read whole first: what it
 * yields is kept, up to `limit` bytes, so that a retry sends it again and then goes on
 * reading the stream where the last attempt left it. Past the limit nothing more is
 * kept, and a retry is no longer possible.
 */
import type { Dispatcher } from 'undici';

export type RequestBody = Dispatcher.DispatchOptions['body'];

export interface ReplayableBody {
  /** The body for the next attempt, or undefined when it can no longer be sent again. */
  next(): RequestBody | undefined;
  /** More than the limit was read: the body cannot be sent again. */
  readonly spent: boolean;
}

export function replayableBody(body: RequestBody, limit: number): ReplayableBody {
  if (body === null || body === undefined || isStatic(body))
    return { next: () => body ?? null, spent: false };
  return new StreamedBody(body as AsyncIterable<unknown> | Iterable<unknown>, limit);
}

function isStatic(body: object | string): boolean {
  if (typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  // Blob and FormData are read afresh by undici each time they are sent.
  const tag = (body as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return tag === 'Blob' || tag === 'File' || tag === 'FormData';
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError(`a request body chunk must be bytes or a string, got ${typeof chunk}`);
}

class StreamedBody implements ReplayableBody {
  private iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
  /** Chunks kept, from chunk number `first` on. */
  private kept: Uint8Array[] = [];
  private first = 0;
  private read = 0;
  private bytes = 0;
  private done = false;
  private overflowed = false;
  private pulling: Promise<void> | undefined;

  constructor(
    private readonly source: AsyncIterable<unknown> | Iterable<unknown>,
    private readonly limit: number,
  ) {}

  get spent(): boolean {
    return this.overflowed;
  }

  next(): RequestBody | undefined {
    // undici sends async iterables (its types list only streams).
    return this.overflowed ? undefined : (this.attempt() as unknown as RequestBody);
  }

  private async *attempt(): AsyncGenerator<Uint8Array> {
    for (let i = 0; ;) {
      if (i < this.read) {
        // Only the attempt that went past the limit gets here with i < first: it is no longer sent.
        if (i < this.first) throw new Error('the request body is no longer kept');
        yield this.kept[i - this.first] as Uint8Array;
        i += 1;
      } else if (this.done) {
        return;
      } else {
        await this.pull();
      }
    }
  }

  /** Reads one more chunk of the source; attempts waiting on it share the read. */
  private pull(): Promise<void> {
    this.pulling ??= (async () => {
      try {
        this.iterator ??=
          Symbol.asyncIterator in this.source
            ? this.source[Symbol.asyncIterator]()
            : (this.source as Iterable<unknown>)[Symbol.iterator]();
        const step = await this.iterator.next();
        if (step.done) {
          this.done = true;
          return;
        }
        const chunk = toBytes(step.value);
        this.read += 1;
        this.bytes += chunk.byteLength;
        if (this.bytes > this.limit) {
          // Only the newest chunk is kept, for the attempt reading it.
          this.overflowed = true;
          this.kept = [chunk];
          this.first = this.read - 1;
        } else {
          this.kept.push(chunk);
        }
      } finally {
        this.pulling = undefined;
      }
    })();
    return this.pulling;
  }
}
