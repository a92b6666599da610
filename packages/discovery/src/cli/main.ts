#!/usr/bin/env node
/** `consul-leader`: the entry point. Wires arguments, the environment, signals and exit codes. */
import { type LeaderDiscovery, createLeaderDiscovery } from '../discovery.js';
import { EXIT_OK, EXIT_USAGE, USAGE, helpText, parseCliArgs } from './args.js';
import { type Output, discoveryOptions, reportError, runGet, runWatch } from './commands.js';
import { runList, runWatchPrefix } from './prefix.js';
import type { Terminal } from './screen.js';

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

const terminal: Terminal = {
  write: (text) => void process.stdout.write(text),
  size: () => ({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 }),
  onResize: (listener) => {
    process.stdout.on('resize', listener);
    return () => void process.stdout.off('resize', listener);
  },
};

async function main(argv: readonly string[]): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const output: Output = {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    colour: tty && !process.env.NO_COLOR,
    ...(tty ? { width: terminal.size().columns, terminal } : {}),
  };

  const parsed = parseCliArgs(argv);
  if (parsed.kind === 'help') {
    process.stdout.write(helpText(parsed.command));
    return EXIT_OK;
  }
  if (parsed.kind === 'usage-error') {
    process.stderr.write(`consul-leader: ${parsed.message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const options = parsed.options;

  let discovery: LeaderDiscovery;
  try {
    discovery = createLeaderDiscovery(discoveryOptions(options, process.env));
  } catch (error) {
    return reportError(error, output);
  }

  try {
    if (options.command === 'get') return await runGet(discovery, options, output);
    if (options.command === 'list') return await runList(discovery, options, output);
    // `get` and `list` keep Node's default signal handling; `watch` stops cleanly on a signal
    // (and, with --prefix on a terminal, gives the normal screen back).
    const stop = new AbortController();
    const onStop = (): void => stop.abort();
    process.once('SIGINT', onStop);
    process.once('SIGTERM', onStop);
    // A reader that went away (`consul-leader watch k | head -1`) ends the watch too.
    process.stdout.on('error', onStop);
    return options.prefix
      ? await runWatchPrefix(discovery, options, output, stop.signal)
      : await runWatch(discovery, options, output, stop.signal);
  } finally {
    discovery.close();
  }
}

main(process.argv.slice(2)).then(
  async (code) => {
    await Promise.all([flush(process.stdout), flush(process.stderr)]);
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`consul-leader: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
