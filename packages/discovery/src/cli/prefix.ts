/**
 * The commands over every key under a prefix: `list <prefix>` (one read) and
 * `watch --prefix <prefix>` (a live view, or one line per change), both on
 * `watchPrefix()`: one recursive query for every key, and whether Consul
 * answers (an empty prefix and an outage are told apart).
 */
import { firstValueFrom } from 'rxjs';
import type { ErrorInfo, LeaderState } from '@consul-leader/types';
import type { LeaderDiscovery } from '../discovery.js';
import { type CliOptions, EXIT_OK } from './args.js';
import { type Output, callOptions, followUntilStopped, reportError } from './commands.js';
import { errorInfo, errorPart, printable, stateJsonLine, stateLine, statesJson } from './format.js';
import { PrefixView } from './prefix-view.js';
import { LiveScreen } from './screen.js';
import { type ConsulStatus, renderTable, renderWatchScreen } from './table.js';

type State = LeaderState<unknown, ErrorInfo>;

const byKey = (a: State, b: State): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** `list <prefix>`: prints the state of every key under the prefix once. */
export async function runList(
  discovery: LeaderDiscovery,
  options: CliOptions,
  output: Output,
): Promise<number> {
  let prefix;
  try {
    prefix = await firstValueFrom(discovery.watchPrefix(options.key, callOptions(options)));
  } catch (error) {
    return reportError(error, output);
  }
  if (prefix.unreachable) return reportError(prefix.unreachable.error, output);
  if (prefix.states.size === 0) {
    // Consul filters a recursive read by ACL without a 403: an empty answer may hide keys the
    // token cannot read. A single read of the prefix key says so (PERMISSION_DENIED).
    try {
      await discovery.current(options.key, callOptions(options));
    } catch (error) {
      return reportError(error, output);
    }
  }
  const sorted = [...prefix.states.values()].sort(byKey);
  if (options.json) {
    output.out(statesJson(sorted));
  } else {
    const table = renderTable(
      sorted.map((state) => ({ state })),
      {
        now: new Date(),
        colour: output.colour,
        ...(output.width === undefined ? {} : { width: output.width }),
      },
    );
    for (const line of table) {
      // A reader that went away (`list p/ | head -1`) reads no more lines.
      if (output.closed?.()) break;
      output.out(line);
    }
  }
  return EXIT_OK;
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

  return followUntilStopped(
    output,
    stop,
    () => discovery.watchPrefix(options.key, callOptions(options)),
    ({ states, unreachable }) => {
      const now = new Date();
      if (!unreachable) {
        show(view.read(states, now), now);
      } else if (states.size > 0) {
        show(view.outage(states, now), now);
      } else {
        view.outageWithoutKeys(errorInfo(unreachable.error), now);
        show([], now);
      }
    },
    screen,
  );
}
