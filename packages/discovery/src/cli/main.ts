#!/usr/bin/env node
/** `consul-leader`: the entry point. Wires arguments, the environment, signals and exit codes. */
import { readFileSync } from 'node:fs';
import { type LeaderDiscovery, createLeaderDiscovery } from '../discovery.js';
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE, USAGE, helpText, parseCliArgs } from './args.js';
import { type Output, discoveryOptions, reportError, runGet, runWatch } from './commands.js';
import { printable } from './format.js';
import { runList, runWatchPrefix } from './prefix.js';
import type { Terminal } from './screen.js';

/**
 * stdout and stderr, closed once they fail. An error on either (EPIPE: `consul-leader get k | true`,
 * `list p/ | head -1`) is no crash and prints nothing: what is written there afterwards is
 * dropped, and the command ends with the exit code it would have had (`watch` stops: exit 0).
 */
const closedStreams = new Set<NodeJS.WriteStream>();
const stdoutClosed = new AbortController();
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', () => {
    closedStreams.add(stream);
    if (stream === process.stdout) stdoutClosed.abort();
  });
}

function isClosed(stream: NodeJS.WriteStream): boolean {
  return closedStreams.has(stream) || stream.destroyed;
}

function write(stream: NodeJS.WriteStream, text: string): void {
  if (!isClosed(stream)) stream.write(text);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (isClosed(stream) || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** The version of the package this file was built in (dist/cli/main.js: ../../package.json). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}

const terminal: Terminal = {
  write: (text) => write(process.stdout, text),
  size: () => ({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 }),
  onResize: (listener) => {
    process.stdout.on('resize', listener);
    return () => void process.stdout.off('resize', listener);
  },
};

async function main(argv: readonly string[]): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const output: Output = {
    out: (line) => write(process.stdout, `${line}\n`),
    err: (line) => write(process.stderr, `${line}\n`),
    closed: () => isClosed(process.stdout),
    colour: tty && !process.env.NO_COLOR,
    ...(tty ? { width: terminal.size().columns, terminal } : {}),
  };

  const parsed = parseCliArgs(argv);
  if (parsed.kind === 'help') {
    write(process.stdout, helpText(parsed.command));
    return EXIT_OK;
  }
  if (parsed.kind === 'version') {
    write(process.stdout, `${version()}\n`);
    return EXIT_OK;
  }
  if (parsed.kind === 'usage-error') {
    write(process.stderr, `consul-leader: ${printable(parsed.message)}\n\n${USAGE}`);
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
    if (stdoutClosed.signal.aborted) onStop();
    else stdoutClosed.signal.addEventListener('abort', onStop, { once: true });
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
    write(
      process.stderr,
      `consul-leader: ${printable(error instanceof Error ? error.message : String(error))}\n`,
    );
    process.exit(EXIT_ERROR);
  },
);
