/** Command-line parsing of `consul-leader` (node:util parseArgs) and its usage text. */
import { parseArgs } from 'node:util';
import { parseAddress } from '../config/env.js';
import { checkKey, checkToken } from '../config/checks.js';
import type { Consistency } from '../config/options.js';
import { InvalidOptionError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_NO_LEADER = 3;

/** The options every command takes. */
const COMMON_OPTIONS = `  --addr <addr>          Consul HTTP API: host:port or http(s)://host:port (default: CONSUL_HTTP_ADDR,
                         else 127.0.0.1:8500); CONSUL_CACERT, CONSUL_CLIENT_CERT, ... still apply
  --token <token>        ACL token (default: CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE); never printed
  --dc <dc>              datacenter to read from (default: the agent's)
  --consistency <mode>   default | stale | consistent (default: default)
  --decode <format>      how the keys' values are decoded: json | text (default: json)
`;

const HELP_OPTIONS = `  -h, --help             print this help (consul-leader <command> --help: help on one command)
  -V, --version          print the version of consul-leader
`;

/** Every option, for the whole usage. */
const OPTIONS = `Options:
${COMMON_OPTIONS}  --prefix <prefix>      watch: follow every key under the prefix (one recursive query) instead of one key
  --json                 JSON instead of text (bigints as decimal strings): one object per line
                         (get, watch), one array (list)
${HELP_OPTIONS}`;

/** The options of one command: only the flags it takes. */
const COMMAND_OPTIONS = {
  get: `Options:
${COMMON_OPTIONS}  --json                 the Leader as JSON (bigints as decimal strings); null when the key has no
                         leader; the LeaderState (without "time") when its value is invalid
${HELP_OPTIONS}`,
  watch: `Options:
${COMMON_OPTIONS}  --prefix <prefix>      follow every key under the prefix (one recursive query) instead of one key
  --json                 one JSON object per line: the LeaderState plus "time" (bigints as decimal strings)
${HELP_OPTIONS}`,
  list: `Options:
${COMMON_OPTIONS}  --json                 one JSON array of the keys' states (LeaderState, bigints as decimal strings)
${HELP_OPTIONS}`,
} as const;

const EXIT_CODES = `Exit codes:
  0  get: the key has a leader; list: Consul was read (even with no key or no leader under the prefix);
     watch: stopped by SIGINT/SIGTERM, or its reader went away (a closed pipe)
  3  get: the key has no leader (missing, released, session gone), or its value is invalid (cannot be
     decoded, or cannot be written as JSON: printed as an invalid state with the reason)
  1  error: Consul unreachable, permission denied, unexpected answer (printed on stderr with its code)
  2  usage error: unknown command or option, missing key, invalid key, token, option or configuration
A closed stdout or stderr (consul-leader ... | head -1) is no error: nothing more is written there,
nothing is said about it, and the exit code is what it would have been (a closed stdout ends watch: 0).
`;

export const USAGE = `Usage:
  consul-leader watch <key> [options]            print every change of the key's leader state until SIGINT/SIGTERM
  consul-leader watch --prefix <prefix> [opts]   follow every leader key under the prefix until SIGINT/SIGTERM
  consul-leader get <key> [options]              print the key's current leader once
  consul-leader list <prefix> [options]          print the state of every leader key under the prefix once

${OPTIONS}
${EXIT_CODES}`;

const tableColumns = (states: string): string => `  KEY          the full key
  STATE        ${states}
  LEADER       the leader's descriptor (the key's value, as JSON); else why there is none:
               (key-missing), (no-session), (session-gone), or raw=<value> (why it is invalid)
  CONSUL NODE  the Consul node of the session holding the key
  SESSION      the first 8 characters of that session's id`;

const COMMAND_HELP = {
  get: `Usage: consul-leader get <key> [options]

Reads the key and its session once (non-blocking) and prints the leader: a line with the time, the
key, the descriptor, the session id and its Consul node; with --json, the Leader as JSON (exit 0).
A key without a leader prints "no leader" (--json: null), exit 3. A key held by a session whose value
is invalid (not JSON, say, or nested too deeply to be written as JSON) prints the invalid line of
watch: the reason and the session (--json: the LeaderState, {"status":"invalid",...} with the raw
value, without "time"), exit 3.
`,
  watch: `Usage:
  consul-leader watch <key> [options]
  consul-leader watch --prefix <prefix> [options]

Follows the key with Consul blocking queries and prints every change of its state (leader, vacant,
invalid, unreachable) as a line: the time, the state, the key and the details. With --json, one JSON
object per line: the LeaderState plus "time". Runs until SIGINT or SIGTERM.

With --prefix, follows every key under the prefix with one recursive blocking query.
On a terminal: a table redrawn in place (like top), one row per key, sorted by key, under a line
that says whether Consul answers (and its error while it does not):
${tableColumns('leader | vacant | invalid | unreachable (then the columns show what was last read)')}
  SINCE        time since the key's state last changed (">": unchanged since the watch started)
A key deleted while watched stays, as vacant (key-missing).
Otherwise (a pipe, a file): one line per key whose state changed, in the format of watch <key>;
with --json, one JSON object per changed key (the LeaderState plus "time"). An outage while no key
is known is said on stderr.
`,
  list: `Usage: consul-leader list <prefix> [options]

Reads every key under the prefix once (one recursive read, and the sessions holding the keys) and
prints one row per key, sorted by key:
${tableColumns('leader | vacant | invalid')}
On a terminal, the table fits its width (long values are cut with "…"); otherwise values are printed
in full. With --json, one JSON array of the keys' states (LeaderState: bigints as decimal strings,
errors as {"code","message","status"?}); [] when the prefix has no key.
`,
} as const;

/** The help of one command, or the whole usage. */
export function helpText(command?: Command): string {
  return command === undefined
    ? USAGE
    : `${COMMAND_HELP[command]}\n${COMMAND_OPTIONS[command]}\n${EXIT_CODES}`;
}

export type Command = 'watch' | 'get' | 'list';
const COMMANDS: readonly Command[] = ['watch', 'get', 'list'];
export type DecodeFormat = 'json' | 'text';

export interface CliOptions {
  readonly command: Command;
  /** The key (`get`, `watch <key>`) or the prefix (`list`, `watch --prefix`). */
  readonly key: string;
  /** Whether `key` is a prefix: `list <prefix>`, `watch --prefix <prefix>`. */
  readonly prefix: boolean;
  readonly addr?: string;
  readonly token?: string;
  readonly dc?: string;
  readonly consistency?: Consistency;
  readonly decode?: DecodeFormat;
  readonly json: boolean;
}

export type ParsedArgs =
  | { readonly kind: 'run'; readonly options: CliOptions }
  | { readonly kind: 'help'; readonly command?: Command }
  | { readonly kind: 'version' }
  | { readonly kind: 'usage-error'; readonly message: string };

const CONSISTENCIES: readonly Consistency[] = ['default', 'stale', 'consistent'];
const DECODE_FORMATS: readonly DecodeFormat[] = ['json', 'text'];

const optionSpec = {
  addr: { type: 'string' },
  token: { type: 'string' },
  dc: { type: 'string' },
  consistency: { type: 'string' },
  decode: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

function isOneOf<T extends string>(value: string, allowed: readonly T[]): value is T {
  return (allowed as readonly string[]).includes(value);
}

function notOneOf(name: string, value: string, allowed: readonly string[]): ParsedArgs {
  return {
    kind: 'usage-error',
    message: `--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
  };
}

/** Values of `--token` in `argv`, so that no message can echo them. */
function tokenValues(argv: readonly string[]): string[] {
  const values: string[] = [];
  argv.forEach((arg, i) => {
    if (arg === '--token' && argv[i + 1]) values.push(argv[i + 1] as string);
    else if (arg.startsWith('--token=') && arg.length > '--token='.length) values.push(arg.slice(8));
  });
  return values;
}

function redact(message: string, secrets: readonly string[]): string {
  return secrets.reduce((text, secret) => text.split(secret).join('<redacted>'), message);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** Throws INVALID_OPTION when `value` holds a control character (or matches `also`). */
function noControl(name: string, value: string, also?: RegExp): void {
  if (CONTROL.test(value) || also?.test(value)) {
    const what = also ? 'a control character or a space' : 'a control character';
    throw new InvalidOptionError(
      `invalid option ${name}: must not hold ${what}, got ${JSON.stringify(value)}`,
    );
  }
}

/** The message of the SDK's INVALID_OPTION error `check` throws, prefixed with its code. */
function sdkRefusal(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    const { code } = error as { code?: unknown };
    const message = error instanceof Error ? error.message : String(error);
    return `${typeof code === 'string' ? code : 'INVALID_OPTION'}: ${message}`;
  }
}

/** Parses `argv` (without `node` and the script). Never throws. */
export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: optionSpec, allowPositionals: true, strict: true });
  } catch (error) {
    // Node's first sentence ("Unknown option '--x'.") without its advice on positionals.
    const text = error instanceof Error ? error.message : String(error);
    const message = /^[^\n]*?\.(?=\s|$)/.exec(text)?.[0] ?? text.split('\n')[0] ?? text;
    return { kind: 'usage-error', message: redact(message, tokenValues(argv)) };
  }
  const { values, positionals } = parsed;
  const [command, target, ...rest] = positionals;
  const known = command !== undefined && isOneOf(command, COMMANDS);
  if (values.help) return known ? { kind: 'help', command } : { kind: 'help' };
  if (values.version) return { kind: 'version' };

  if (command === undefined) return { kind: 'usage-error', message: 'missing command (watch, get or list)' };
  if (!known) return { kind: 'usage-error', message: `unknown command ${JSON.stringify(command)}` };
  const what = command === 'list' ? '<prefix>' : '<key>';
  if (rest.length > 0) return { kind: 'usage-error', message: `${command}: too many arguments` };
  if (values.prefix !== undefined) {
    if (command !== 'watch') {
      const hint = command === 'get' ? ' (list <prefix> reads every key under a prefix)' : ': list <prefix>';
      return { kind: 'usage-error', message: `${command}: --prefix is an option of watch only${hint}` };
    }
    if (target !== undefined) {
      return { kind: 'usage-error', message: 'watch: give either <key> or --prefix <prefix>, not both' };
    }
    if (values.prefix === '') return { kind: 'usage-error', message: '--prefix must not be empty' };
  } else if (target === undefined || target === '') {
    const or = command === 'watch' ? ' (or --prefix <prefix>)' : '';
    return { kind: 'usage-error', message: `${command}: missing ${what}${or}` };
  }
  const key = values.prefix ?? (target as string);

  for (const name of ['addr', 'token', 'dc'] as const) {
    if (values[name] === '') return { kind: 'usage-error', message: `--${name} must not be empty` };
  }
  const { consistency, decode } = values;
  if (consistency !== undefined && !isOneOf(consistency, CONSISTENCIES)) {
    return notOneOf('consistency', consistency, CONSISTENCIES);
  }
  if (decode !== undefined && !isOneOf(decode, DECODE_FORMATS)) {
    return notOneOf('decode', decode, DECODE_FORMATS);
  }
  // What the SDK would refuse (INVALID_OPTION) is a usage error here, named after the flag;
  // a token is never shown (CONSUL_HTTP_TOKEN is checked by the SDK, with the same rule).
  const refused = sdkRefusal(() => {
    checkKey(command === 'list' || values.prefix !== undefined ? 'prefix' : 'key', key);
    checkToken('--token', values.token);
    if (values.addr !== undefined) {
      noControl('--addr', values.addr.trim());
      parseAddress('--addr', values.addr);
    }
    if (values.dc !== undefined) noControl('--dc', values.dc, /\s/);
  });
  if (refused !== undefined) return { kind: 'usage-error', message: redact(refused, tokenValues(argv)) };

  return {
    kind: 'run',
    options: {
      command,
      key,
      prefix: command === 'list' || values.prefix !== undefined,
      json: values.json ?? false,
      ...(values.addr === undefined ? {} : { addr: values.addr }),
      ...(values.token === undefined ? {} : { token: values.token }),
      ...(values.dc === undefined ? {} : { dc: values.dc }),
      ...(consistency === undefined ? {} : { consistency }),
      ...(decode === undefined ? {} : { decode }),
    },
  };
}
