/** Command-line parsing of `consul-leader` (node:util parseArgs) and its usage text. */
import { parseArgs } from 'node:util';
import type { Consistency } from '../config/options.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_NO_LEADER = 3;

export const USAGE = `Usage:
  consul-leader watch <key> [options]   print every change of the key's leader state until SIGINT/SIGTERM
  consul-leader get <key> [options]     print the key's current leader once

Options:
  --addr <addr>          Consul HTTP API: host:port or http(s)://host:port (default: CONSUL_HTTP_ADDR,
                         else 127.0.0.1:8500); CONSUL_CACERT, CONSUL_CLIENT_CERT, ... still apply
  --token <token>        ACL token (default: CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)
  --dc <dc>              datacenter to read from (default: the agent's)
  --consistency <mode>   default | stale | consistent (default: default)
  --decode <format>      how the key's value is decoded: json | text (default: json)
  --json                 one JSON object per line (bigints as decimal strings) instead of text
  -h, --help             print this help

Exit codes:
  0  get: the key has a leader; watch: stopped by SIGINT/SIGTERM
  3  get: the key has no leader (missing, released, session gone, or a value that cannot be decoded)
  1  error: Consul unreachable, permission denied, unexpected answer
  2  usage error: unknown command or option, missing key, invalid option or configuration
`;

export type Command = 'watch' | 'get';
export type DecodeFormat = 'json' | 'text';

export interface CliOptions {
  readonly command: Command;
  readonly key: string;
  readonly addr?: string;
  readonly token?: string;
  readonly dc?: string;
  readonly consistency?: Consistency;
  readonly decode?: DecodeFormat;
  readonly json: boolean;
}

export type ParsedArgs =
  | { readonly kind: 'run'; readonly options: CliOptions }
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error'; readonly message: string };

const CONSISTENCIES: readonly Consistency[] = ['default', 'stale', 'consistent'];
const DECODE_FORMATS: readonly DecodeFormat[] = ['json', 'text'];

const optionSpec = {
  addr: { type: 'string' },
  token: { type: 'string' },
  dc: { type: 'string' },
  consistency: { type: 'string' },
  decode: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
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
  if (values.help) return { kind: 'help' };

  const [command, key, ...rest] = positionals;
  if (command === undefined) return { kind: 'usage-error', message: 'missing command (watch or get)' };
  if (command !== 'watch' && command !== 'get') {
    return { kind: 'usage-error', message: `unknown command ${JSON.stringify(command)}` };
  }
  if (key === undefined || key === '') return { kind: 'usage-error', message: `${command}: missing <key>` };
  if (rest.length > 0) return { kind: 'usage-error', message: `${command}: too many arguments` };

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

  return {
    kind: 'run',
    options: {
      command,
      key,
      json: values.json ?? false,
      ...(values.addr === undefined ? {} : { addr: values.addr }),
      ...(values.token === undefined ? {} : { token: values.token }),
      ...(values.dc === undefined ? {} : { dc: values.dc }),
      ...(consistency === undefined ? {} : { consistency }),
      ...(decode === undefined ? {} : { decode }),
    },
  };
}
