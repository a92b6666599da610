/** The streams of one discovery: one per id, shared by its subscribers, all completed by close(). */
import { Observable, finalize, shareReplay } from 'rxjs';

export class StreamRegistry {
  readonly #streams = new Map<string, Observable<unknown>>();
  // What close() completes. A Set, not a Subject every stream subscribes to (takeUntil):
  // leaving a Subject of n observers costs O(n), so unsubscribing n keys cost O(n²).
  readonly #open = new Set<() => void>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  /** `source`, completed by close(). */
  untilClosed<E>(source: Observable<E>): Observable<E> {
    return new Observable<E>((subscriber) => {
      const end = (): void => subscriber.complete();
      this.#open.add(end);
      const subscription = source.subscribe(subscriber);
      return () => {
        this.#open.delete(end);
        subscription.unsubscribe();
      };
    });
  }

  /** One stream per id, shared by every subscriber (the last value replayed), forgotten when unused. */
  shared<E>(id: string, make: () => Observable<E>): Observable<E> {
    let stream = this.#streams.get(id) as Observable<E> | undefined;
    if (!stream) {
      stream = this.untilClosed(make()).pipe(
        finalize(() => this.#streams.delete(id)),
        shareReplay({ bufferSize: 1, refCount: true }),
      );
      this.#streams.set(id, stream);
    }
    return stream;
  }

  /** Completes every stream. */
  close(): void {
    this.#closed = true;
    for (const end of [...this.#open]) end();
  }
}
