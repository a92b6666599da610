/**
 * The SDK's streams are also async iterables: `for await (const leader of
 * discovery.leader(key))`. Latest-value semantics: a consumer slower than the
 * changes gets the newest value when it asks, never a backlog; `break` unsubscribes.
 */
import type { Observable, Subscription } from 'rxjs';

/** An Observable that `for await` can read too (the newest value at each step). */
export type LiveObservable<T> = Observable<T> & AsyncIterable<T>;

/** `source`, made iterable (the same object: sharing and replay stay as they are). */
export function live<T>(source: Observable<T>): LiveObservable<T> {
  const iterable = source as LiveObservable<T>;
  if (!(Symbol.asyncIterator in iterable)) {
    Object.defineProperty(iterable, Symbol.asyncIterator, { value: () => latestValues(source) });
  }
  return iterable;
}

type Step<T> = IteratorResult<T, undefined>;

/** The newest value of `source` at each `next()`; subscribes on the first. */
export function latestValues<T>(source: Observable<T>): AsyncIterableIterator<T> {
  let subscription: Subscription | undefined;
  let latest: { readonly value: T } | undefined;
  let failure: { readonly error: unknown } | undefined;
  let done = false;
  let waiting: { resolve: (step: Step<T>) => void; reject: (error: unknown) => void } | undefined;

  const finish = (): Promise<Step<T>> => {
    done = true;
    subscription?.unsubscribe();
    return Promise.resolve({ done: true, value: undefined });
  };
  const iterator: AsyncIterableIterator<T> = {
    next() {
      subscription ??= source.subscribe({
        next: (value) => {
          if (waiting) {
            const { resolve } = waiting;
            waiting = undefined;
            resolve({ done: false, value });
          } else latest = { value };
        },
        error: (error: unknown) => {
          done = true;
          if (waiting) waiting.reject(error);
          else failure = { error };
          waiting = undefined;
        },
        complete: () => {
          done = true;
          waiting?.resolve({ done: true, value: undefined });
          waiting = undefined;
        },
      });
      if (latest) {
        const { value } = latest;
        latest = undefined;
        return Promise.resolve({ done: false, value });
      }
      if (failure) {
        const { error } = failure;
        failure = undefined;
        return Promise.reject(error);
      }
      if (done) return finish();
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    return: finish,
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}
