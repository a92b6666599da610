/**
 * The outage policy of every followed thing (a key, a prefix): while Consul cannot be
 * read, each `unreachable` event carries the last state read, `lastKnown` (null when
 * nothing was read yet), so that subscribers keep the truth they had.
 */
import { type OperatorFunction, map, scan } from 'rxjs';

interface Outage {
  readonly kind: 'unreachable';
}

/** `D` with the last settled event before it. */
export type WithLastKnown<S, D extends Outage> = D & { readonly lastKnown: S | null };

export function withLastKnown<S extends { readonly kind: string }, D extends Outage>(): OperatorFunction<
  S | D,
  S | WithLastKnown<S, D>
> {
  type Out = S | WithLastKnown<S, D>;
  const isOutage = (event: S | D | Out): event is D => event.kind === 'unreachable';
  return (events) =>
    events.pipe(
      scan<S | D, Out | undefined>((previous, step) => {
        if (!isOutage(step)) return step;
        const lastKnown =
          previous === undefined
            ? null
            : isOutage(previous)
              ? (previous as WithLastKnown<S, D>).lastKnown
              : previous;
        return { ...step, lastKnown };
      }, undefined),
      map((event) => event as Out),
    );
}
