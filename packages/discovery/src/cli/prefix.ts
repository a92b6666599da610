/**
 * The commands over every key under a prefix: `list <prefix>` (one read) and
 * `watch --prefix <prefix>` (a live view, or one line per change), both on
 * `watchLeaders()`: one recursive query for every key.
 *
 * `watchLeaders()` emits an empty map both when the prefix has no key and
 * during an outage before any key was known (its `unreachable` states are per
 * key, and there is none), without the error. So an empty map is checked with
 * a second, single-key read of the prefix (`current()`), which rejects with
 * the error when Consul cannot be read.
 */
import { Subscription } from 'rxjs';
import type { ErrorInfo, LeaderState } from '@consul-leader/types';
import type { LeaderDiscovery } from '../discovery.js';
import { type CliOptions, EXIT_ERROR, EXIT_OK } from './args.js';
import { type Output, callOptions, reportError } from './commands.js';
import { errorInfo, errorPart, jsonReplacer, printable, stateJsonLine, stateLine } from './format.js';
import { PrefixView } from './prefix-view.js';
import { LiveScreen } from './screen.js';
import { type ConsulStatus, renderTable, renderWatchScreen } from './table.js';

type State = LeaderState<unknown, ErrorInfo>;

/** How many times `list` waits for a retry when Consul answers but the prefix's read failed. */
const LIST_ROUNDS = 3;
/** While an outage is known only from the single-key read, it is read again this often. */
const REPROBE_MS = 5000;

const byKey = (a: State, b: State): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function isOutage(states: ReadonlyMap<string, State>): boolean {
  for (const state of states.values()) if (state.status !== 'unreachable') return false;
  return states.size > 0;
}

/** One read of the prefix key: undefined when Consul answered, else the error. */
function probe(discovery: LeaderDiscovery, options: CliOptions): Promise<unknown> {
  return discovery.current(options.key, callOptions(options)).then(
    () => undefined,
    (error: unknown) => error ?? new Error('the read failed'),
  );
}

/** `list <prefix>`: prints the state of every key under the prefix once. */
export function runList(discovery: LeaderDiscovery, options: CliOptions, output: Output): Promise<number> {
  return new Promise((resolve) => {
    const subscriptions = new Subscription();
    let done = false;
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      subscriptions.unsubscribe();
      resolve(code);
    };
    const print = (states: ReadonlyMap<string, State>): void => {
      const sorted = [...states.values()].sort(byKey);
      if (options.json) {
        output.out(JSON.stringify(sorted, jsonReplacer));
      } else {
        const table = renderTable(
          sorted.map((state) => ({ state })),
          {
            now: new Date(),
            colour: output.colour,
            ...(output.width === undefined ? {} : { width: output.width }),
          },
        );
        for (const line of table) output.out(line);
      }
      finish(EXIT_OK);
    };

    // `leaders()` emits only for a read of Consul, never for an outage. Subscribed first, it shares
    // `watchLeaders()`'s query and hears of each answer before it: `answered` tells an empty prefix
    // from an outage before any key was known.
    let answered = false;
    let latest: ReadonlyMap<string, State> | undefined;
    let probing = false;
    let rounds = 0;
    const decide = (): void => {
      if (done || probing || latest === undefined) return;
      const states = latest;
      if (isOutage(states)) {
        const first = states.values().next().value as Extract<State, { status: 'unreachable' }>;
        finish(reportError(first.error, output));
        return;
      }
      if (states.size > 0) {
        print(states);
        return;
      }
      // Empty: no key, or no answer. A single-key read gives the error (or the answer Consul's
      // ACLs hide: a recursive read filters out what the token may not read, without a 403).
      probing = true;
      void probe(discovery, options).then((error) => {
        probing = false;
        if (done) return;
        if (error !== undefined) return finish(reportError(error, output));
        if (answered) return print(states);
        // Consul answers, but the prefix's read (or its sessions') failed: wait for the SDK's retry.
        rounds += 1;
        if (rounds < LIST_ROUNDS) {
          latest = undefined;
          return;
        }
        output.err(
          `consul-leader: the keys under ${JSON.stringify(printable(options.key))} could not be read: ` +
            'Consul answers single reads, but its recursive read or the sessions\u2019 reads kept failing',
        );
        finish(EXIT_ERROR);
      });
    };

    try {
      const call = callOptions(options);
      const leaders$ = discovery.leaders(options.key, call);
      const states$ = discovery.watchLeaders(options.key, call);
      subscriptions.add(
        leaders$.subscribe(() => {
          answered = true;
          decide();
        }),
      );
      subscriptions.add(
        states$.subscribe({
          next: (states) => {
            latest = states;
            decide();
          },
          error: (error: unknown) => finish(reportError(error, output)),
          complete: () => {
            if (done) return;
            output.err('consul-leader: the read ended unexpectedly');
            finish(EXIT_ERROR);
          },
        }),
      );
    } catch (error) {
      finish(reportError(error, output));
    }
  });
}

/**
 * `watch --prefix <prefix>`: until `stop` aborts (exit 0), a live table on a
 * terminal, else one line (or JSON line) per key whose state changed.
 */
export function runWatchPrefix(
  discovery: LeaderDiscovery,
  options: CliOptions,
  output: Output,
  stop: AbortSignal,
): Promise<number> {
  return new Promise((resolve) => {
    let states$;
    try {
      states$ = discovery.watchLeaders(options.key, callOptions(options));
    } catch (error) {
      resolve(reportError(error, output));
      return;
    }

    const view = new PrefixView(new Date());
    const terminal = options.json ? undefined : output.terminal;
    const screen = terminal
      ? new LiveScreen(terminal, (columns, rows) =>
          renderWatchScreen(options.key, view.status, view.rows(), {
            now: new Date(),
            width: columns,
            height: rows,
            colour: output.colour,
          }),
        )
      : undefined;

    let stopped = false;
    // Without a screen, an outage that no key's line shows is said once on stderr.
    let announced = false;
    const show = (changed: readonly State[], now: Date): void => {
      if (screen) {
        screen.draw();
        return;
      }
      for (const state of changed) {
        output.out(options.json ? stateJsonLine(state, now) : stateLine(state, now, output.colour));
      }
      const status: ConsulStatus = view.status;
      if (status.kind === 'unreachable' && changed.length === 0 && !announced) {
        announced = true;
        const under = JSON.stringify(printable(options.key));
        output.err(`consul-leader: ${errorPart(status.error)} (no key known under ${under}; retrying)`);
      } else if (status.kind === 'ok' && announced) {
        announced = false;
        output.err('consul-leader: Consul answers again');
      }
    };

    // An empty map is checked with a single-key read, one at a time; its answer is used only if the
    // last map is still empty.
    let lastEmpty = false;
    let probing = false;
    let reprobe: ReturnType<typeof setTimeout> | undefined;
    const check = (): void => {
      clearTimeout(reprobe);
      if (probing) return;
      probing = true;
      void probe(discovery, options).then((error) => {
        probing = false;
        if (stopped || !lastEmpty) return;
        const now = new Date();
        if (error === undefined) {
          show(view.read(new Map(), now), now);
          return;
        }
        view.outageWithoutKeys(errorInfo(error), now);
        show([], now);
        // Consul may come back with the prefix still empty: the SDK's query then emits nothing new.
        reprobe = setTimeout(check, REPROBE_MS);
      });
    };

    const subscription = new Subscription();
    const end = (code: () => number): void => {
      if (stopped) return;
      stopped = true;
      clearTimeout(reprobe);
      subscription.unsubscribe();
      // The normal screen back first, so that an error is printed where it stays.
      screen?.close();
      resolve(code());
    };

    screen?.start();
    subscription.add(
      states$.subscribe({
        next: (states) => {
          const now = new Date();
          clearTimeout(reprobe);
          lastEmpty = states.size === 0;
          if (isOutage(states)) show(view.outage(states, now), now);
          else if (states.size > 0 || view.lastReadHadKeys) show(view.read(states, now), now);
          else check();
        },
        error: (error: unknown) => end(() => reportError(error, output)),
        complete: () =>
          end(() => {
            output.err('consul-leader: the watch ended unexpectedly');
            return EXIT_ERROR;
          }),
      }),
    );

    const onStop = (): void => end(() => EXIT_OK);
    if (stop.aborted) onStop();
    else stop.addEventListener('abort', onStop, { once: true });
  });
}
