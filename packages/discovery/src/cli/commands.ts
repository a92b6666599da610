/** The `get` and `watch` commands over a `LeaderDiscovery`, writing lines and returning an exit code. */
import { type Observable, Subscription, firstValueFrom } from 'rxjs';
import type { ErrorInfo, LeaderState } from '@consul-leader/types';
import type { LeaderDiscovery } from '../discovery.js';
import type { LeaderDiscoveryOptions, LeaderOptions } from '../config/options.js';
import { isLeaderDiscoveryError } from '../errors.js';
import { type CliOptions, EXIT_ERROR, EXIT_OK, EXIT_NO_LEADER, EXIT_USAGE } from './args.js';
import {
  errorInfo,
  leaderJson,
  leaderLine,
  noLeaderLine,
  printable,
  stateJson,
  stateJsonLine,
  stateLine,
  writeState,
} from './format.js';
import type { Terminal } from './screen.js';

export interface Output {
  /** Writes one line to stdout. */
  readonly out: (line: string) => void;
  /** Writes one line to stderr. */
  readonly err: (line: string) => void;
  /** Whether stdout was closed (a reader that went away): nothing written there is read any more. */
  readonly closed?: () => boolean;
  /** Whether human lines are coloured. */
  readonly colour: boolean;
  /** The terminal's width, when stdout is one: tables fit it. Absent: values in full. */
  readonly width?: number;
  /** The terminal, when stdout is one: `watch --prefix` draws its live view there. */
  readonly terminal?: Terminal;
}

/**
 * Options of `createLeaderDiscovery`. Without `--addr` the SDK reads CONSUL_HTTP_ADDR and the other
 * CONSUL_* variables itself; `--addr` replaces CONSUL_HTTP_ADDR only, so the TLS variables still apply.
 */
export function discoveryOptions(
  options: CliOptions,
  env: Readonly<Record<string, string | undefined>>,
): LeaderDiscoveryOptions {
  return {
    ...(options.addr === undefined ? {} : { env: { ...env, CONSUL_HTTP_ADDR: options.addr } }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.dc === undefined ? {} : { dc: options.dc }),
  };
}

export function callOptions(options: CliOptions): LeaderOptions<unknown> {
  return {
    ...(options.decode === undefined ? {} : { decode: options.decode }),
    ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
  };
}

/** Reports an error on stderr; an invalid option (bad address, key, environment) is a usage error. */
export function reportError(error: unknown, output: Output): number {
  const { code, message, status } = errorInfo(error);
  output.err(`consul-leader: ${code}${status === undefined ? '' : ` (${status})`}: ${printable(message)}`);
  if (isLeaderDiscoveryError(error) && error.code === 'INVALID_OPTION') {
    output.err("Run 'consul-leader --help' for usage.");
    return EXIT_USAGE;
  }
  return EXIT_ERROR;
}

/**
 * `get <key>`: the key's state from one non-blocking read (the first state `watch()` emits).
 * A leader: its line, or the Leader as JSON, exit 0. No leader: "no leader", or null, exit 3.
 * An invalid value (not decodable, or a descriptor that cannot be written as JSON): the
 * `invalid` line of `watch`, or the LeaderState as JSON (without "time"), exit 3.
 * Consul not read (unreachable, permission denied): the error on stderr, exit 1.
 */
export async function runGet(
  discovery: LeaderDiscovery,
  options: CliOptions,
  output: Output,
): Promise<number> {
  let state: LeaderState<unknown, ErrorInfo>;
  try {
    state = await firstValueFrom(discovery.watch(options.key, callOptions(options)));
  } catch (error) {
    return reportError(error, output);
  }
  if (state.status === 'unreachable') return reportError(state.error, output);
  const now = new Date();
  const { json } = options;
  const { colour } = output;
  const [text, code] = writeState(state, (shown): [string, number] => {
    switch (shown.status) {
      case 'leader':
        return [json ? leaderJson(shown.leader) : leaderLine(shown.leader, now, colour), EXIT_OK];
      case 'vacant':
        return [json ? leaderJson(null) : noLeaderLine(options.key, now), EXIT_NO_LEADER];
      default:
        return [json ? stateJson(shown) : stateLine(shown, now, colour), EXIT_NO_LEADER];
    }
  });
  output.out(text);
  return code;
}

/**
 * Follows `open()` until `stop` aborts (exit 0), `show`ing each value. An error, or a
 * stream that ends on its own, is reported (exit 1 or 2). A live `screen` is shown while
 * it runs, and closed before anything is reported, so that an error stays on screen.
 */
export function followUntilStopped<S>(
  output: Output,
  stop: AbortSignal,
  open: () => Observable<S>,
  show: (value: S) => void,
  screen?: { start(): void; close(): void },
): Promise<number> {
  return new Promise((resolve) => {
    let values: Observable<S>;
    try {
      values = open();
    } catch (error) {
      resolve(reportError(error, output));
      return;
    }
    let stopped = false;
    const subscription = new Subscription();
    const end = (code: () => number): void => {
      if (stopped) return;
      stopped = true;
      subscription.unsubscribe();
      screen?.close();
      resolve(code());
    };
    screen?.start();
    subscription.add(
      values.subscribe({
        next: show,
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

/** Prints every state of the key until `stop` aborts (exit 0). */
export function runWatch(
  discovery: LeaderDiscovery,
  options: CliOptions,
  output: Output,
  stop: AbortSignal,
): Promise<number> {
  return followUntilStopped(
    output,
    stop,
    () => discovery.watch(options.key, callOptions(options)),
    (state) => {
      const now = new Date();
      output.out(options.json ? stateJsonLine(state, now) : stateLine(state, now, output.colour));
    },
  );
}
