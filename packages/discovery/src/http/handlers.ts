/**
 * undici has two handler shapes: the controller-based one (`onRequestStart`, ...; undici 7
 * and 8) and the legacy one (`onConnect`, `onHeaders`, ...), which the `fetch` of Node 20
 * and 22 (undici 6) and of undici 7 still pass to `dispatch`. The dispatcher works in the
 * controller shape; a legacy handler is adapted here, once, at the edge.
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

export type DispatchHandler = Dispatcher.DispatchHandler;
export type DispatchController = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

interface LegacyHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onHeaders?(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: Buffer[] | null): void;
  onError?(error: Error): void;
  onUpgrade?(status: number, rawHeaders: Buffer[], socket: Duplex): void;
}

const MODERN = ['onRequestStart', 'onResponseStart', 'onResponseData', 'onResponseEnd', 'onResponseError'];

/** `handler` in the controller shape (itself when it already is). */
export function modernHandler(handler: object): DispatchHandler {
  const methods = handler as Record<string, unknown>;
  if (MODERN.some((name) => typeof methods[name] === 'function')) return handler as DispatchHandler;
  return new LegacyAdapter(handler as LegacyHandler);
}

/** Headers as the legacy shape has them: name, value, name, value (a repeated header repeated). */
export function rawHeaders(headers: Headers | null | undefined): Buffer[] {
  const raw: Buffer[] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      raw.push(Buffer.from(name, 'latin1'), Buffer.from(one, 'latin1'));
    }
  }
  return raw;
}

class LegacyAdapter implements DispatchHandler {
  constructor(private readonly handler: LegacyHandler) {}

  onRequestStart(controller: DispatchController, context: unknown): void {
    this.handler.onConnect?.((reason) => controller.abort(reason ?? new Error('aborted')), context);
  }

  onRequestUpgrade(_c: DispatchController, status: number, headers: Headers, socket: Duplex): void {
    this.handler.onUpgrade?.(status, rawHeaders(headers), socket);
  }

  onResponseStart(controller: DispatchController, status: number, headers: Headers, message?: string): void {
    this.handler.onResponseStarted?.();
    const resume = (): void => controller.resume();
    // The headers as they came off the wire when the controller has them (undici's do): a
    // rebuilt list costs a Buffer per name and value on every answer.
    const raw = controller.rawHeaders;
    const wire = Array.isArray(raw) && Buffer.isBuffer(raw[0]) ? (raw as Buffer[]) : rawHeaders(headers);
    if (this.handler.onHeaders?.(status, wire, resume, message ?? '') === false) {
      controller.pause();
    }
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.handler.onData?.(chunk) === false) controller.pause();
  }

  onResponseEnd(_c: DispatchController, trailers: Headers): void {
    this.handler.onComplete?.(rawHeaders(trailers));
  }

  onResponseError(_c: DispatchController, error: Error): void {
    if (!this.handler.onError) throw error;
    this.handler.onError(error);
  }
}
