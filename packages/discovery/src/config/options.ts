/** Options of `createLeaderDiscovery` and of each call, validated with zod at once. */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type Consul from 'consul';
import { z } from 'zod';
import { InvalidOptionError } from '../errors.js';
import { type KeyKind, checkKey, checkToken } from './checks.js';
import { type StandardSchemaV1, isStandardSchema } from '../state/standard-schema.js';
import type { DecodeOption } from '../state/decode.js';
import { parseDurationMs } from '../wire/duration.js';
import type { IdleWakeupLimit } from '../watch/idle-wakeups.js';
import type { RetryPolicy } from '../watch/retry-policy.js';
import {
  DEFAULT_IDLE_WAKEUP_LIMIT,
  DEFAULT_REQUEST_TIMEOUT,
  DEFAULT_RETRY_POLICY,
  DEFAULT_WAIT,
  MAX_WAIT_MS,
} from './defaults.js';

/** Which Consul server may answer a read (Consul's consistency modes). */
export type Consistency = 'default' | 'stale' | 'consistent';

/** Milliseconds as a number, or a Go duration string: `'500ms'`, `'30s'`, `'5m'`. */
export type Duration = number | string;

/** A PEM certificate or key, as text or bytes, or a list of them (CA bundles). */
export type TlsValue = string | Buffer | ReadonlyArray<string | Buffer>;

/** Options of the `consul` package's client (node-consul), plus the TLS options it passes to Node. */
export interface ConsulClientOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default `8500`. */
  readonly port?: number;
  /** Use HTTPS. */
  readonly secure?: boolean;
  /** node-consul's per-request defaults; `token` and `dc` are used. */
  readonly defaults?: { readonly token?: string; readonly dc?: string };
  readonly ca?: TlsValue;
  readonly cert?: TlsValue;
  readonly key?: TlsValue;
  /** `false` skips certificate checks for this client only (never process-wide). */
  readonly rejectUnauthorized?: boolean;
  readonly servername?: string;
  /** A Unix socket to reach the agent through. */
  readonly socketPath?: string;
  readonly agent?: HttpAgent | HttpsAgent;
}

export interface LeaderDiscoveryOptions {
  /**
   * The Consul client: node-consul options, or a ready `Consul` instance. When
   * absent, the Consul CLI's environment variables are used (`CONSUL_HTTP_ADDR`,
   * `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`, ...), else `127.0.0.1:8500`.
   * A list of them names several agents: when the one in use stops answering,
   * the next read goes to the next one.
   */
  readonly consul?: ConsulClientOptions | Consul | ReadonlyArray<ConsulClientOptions | Consul>;
  /** Default `wait` of blocking queries. Default `'60s'`; Consul caps it at 10 minutes. */
  readonly wait?: Duration;
  /** Default consistency mode. Default `'default'`. */
  readonly consistency?: Consistency;
  /** Default datacenter. */
  readonly dc?: string;
  /** Default ACL token (else the first client's `defaults.token`, else `CONSUL_HTTP_TOKEN`/`_FILE`). */
  readonly token?: string;
  /** Consul Enterprise namespace of every read (`?ns=`). Default: `CONSUL_NAMESPACE`. */
  readonly namespace?: string;
  /** Consul Enterprise admin partition of every read (`?partition=`). Default: `CONSUL_PARTITION`. */
  readonly partition?: string;
  /**
   * HTTP basic auth in front of the agents, sent on every request: `'user:password'` or
   * `{ username, password }`. Default: `CONSUL_HTTP_AUTH`. Never shown in an error or a state.
   */
  readonly httpAuth?: string | { readonly username: string; readonly password: string };
  /** Timeout of non-blocking reads (first read, session info, `current()`). Default `'10s'`. */
  readonly requestTimeout?: Duration;
  /** Backoff after failures. */
  readonly retry?: Partial<RetryPolicy>;
  /** Default of the per-call `nullWhenUnreachableFor`. */
  readonly nullWhenUnreachableFor?: Duration;
  /** Rate limit of wake-ups that bring nothing new, per key. */
  readonly idleWakeups?: Partial<IdleWakeupLimit>;
  /**
   * Serve single keys from one recursive query on their prefix once `minKeys`
   * (default 32) keys of that prefix are followed: one connection to Consul
   * instead of one per key. `prefixOf` picks the prefix (default: the key's
   * top-level folder, `service/` for `service/db/leader`). The token then needs
   * read on the whole prefix. `false` turns it off.
   */
  readonly coalesce?:
    false | { readonly minKeys?: number; readonly prefixOf?: (key: string) => string | null };
  /**
   * Follow the datacenter's sessions (`/v1/session/list`) with one more blocking
   * query, so that a new leader's session is usually known before it acquires
   * the key: the acquisition then reaches subscribers in one round trip instead
   * of two (no `/v1/session/info` read). Costs one more connection per datacenter
   * and token, and a read of every session's info each time any session of the
   * datacenter is created or destroyed. Default `false`.
   */
  readonly watchSessions?: boolean;
  /**
   * Over HTTPS, send every request over HTTP/2 (Consul offers it over TLS): one
   * connection per agent carries all of them, up to the agent's 100 concurrent
   * streams (then one more connection per 100), instead of one connection per
   * blocking query. Plain-HTTP agents and unix sockets stay on HTTP/1.1. Default `false`.
   */
  readonly http2?: boolean;
  /**
   * With `http2` over HTTPS, a prefix of `minKeys` keys or more (default 512)
   * is followed as up to `maxQueries` (default 64) recursive queries on its
   * sub-prefixes, side by side on the one connection, plus one query of its
   * key list: a change to one key wakes a query of a few dozen keys instead of
   * the whole prefix's answer. Subscribers see the same emissions. `false`
   * keeps one recursive query per prefix; `http1: true` splits over HTTP/1.1
   * too, with a connection per query.
   */
  readonly splitPrefixes?: false | SplitPrefixesOption;
  /** The environment to read `CONSUL_*` variables from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The OpenTelemetry `MeterProvider` the SDK's metrics go to. Default: the global one of
   * `@opentelemetry/api` (read when the discovery is created) when that package is installed;
   * without it, no metrics.
   */
  readonly meterProvider?: MeterProviderLike;
  /** What the metrics carry. */
  readonly metrics?: MetricsOptions;
  /**
   * A pino-compatible logger (`debug`, `info`, `warn`, `error`, each `(obj, msg)`): outages,
   * permission denials, invalid values and leader changes, without repeats. Default: silent.
   */
  readonly logger?: LeaderLogger;
}

/** An OpenTelemetry `MeterProvider` (from `@opentelemetry/api`), as far as the SDK uses it. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: object): unknown;
}

/** `LeaderDiscoveryOptions.metrics`. */
export interface MetricsOptions {
  /**
   * Add a `key` attribute (the key or prefix) to the per-key instruments. Default `false`:
   * a prefix of 10,000 keys would otherwise make 10,000 time series.
   */
  readonly perKey?: boolean;
}

/** A pino-compatible logger: pino, winston adapters and console wrappers satisfy it. */
export interface LeaderLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** How big prefixes are split (`LeaderDiscoveryOptions.splitPrefixes`). */
export interface SplitPrefixesOption {
  /** Keys a prefix must hold to be split. Default 512. */
  readonly minKeys?: number;
  /** Most sub-prefix queries per prefix (2 to 90). Default 64, or 16 with `http1`. */
  readonly maxQueries?: number;
  /**
   * Split over HTTP/1.1 too (plain HTTP, or HTTPS without `http2`), where each
   * query holds a connection of its own: up to `maxQueries` + 1 connections per
   * prefix, which count against the agent's `limits.http_max_conns_per_client`
   * (200 by default, for every process of the host together). Worth it when a
   * prefix's one answer costs Consul tens of milliseconds per change (thousands
   * of keys). Default `false`: over HTTP/1.1 a prefix keeps one query.
   */
  readonly http1?: boolean;
}

/** Options of `leader()`, `watch()` and `current()`. */
export interface LeaderOptions<T = unknown> {
  /**
   * Schema of the descriptor a leader writes, from any validator that implements Standard
   * Schema (zod 3.24+ and 4, valibot, arktype); its output types `leader.node`. Default: any
   * JSON value (or `null` for an empty value).
   */
  readonly schema?: StandardSchemaV1<unknown, T>;
  /** How the value's bytes are decoded before the schema. Default `'json'`. */
  readonly decode?: DecodeOption;
  readonly consistency?: Consistency;
  /** `wait` of the blocking query (ms or `'30s'`), at most 10 minutes. */
  readonly wait?: Duration;
  /** Datacenter to read from. */
  readonly dc?: string;
  /** ACL token for this key's reads. */
  readonly token?: string;
  /** Consul Enterprise namespace of this key's reads (`?ns=`). */
  readonly namespace?: string;
  /** Consul Enterprise admin partition of this key's reads (`?partition=`). */
  readonly partition?: string;
  /**
   * `leader()` only: emit `null` once Consul has been unreachable this long. By
   * default the last known leader is kept for as long as the outage lasts.
   */
  readonly nullWhenUnreachableFor?: Duration;
}

const duration = (max: number) =>
  z.union([z.number(), z.string()]).superRefine((value, ctx) => {
    const ms = parseDurationMs(value);
    if (Number.isNaN(ms))
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(value)}` });
    else if (ms <= 0 || ms > max)
      ctx.addIssue({ code: 'custom', message: `must be > 0 and at most ${max} ms` });
  });

const consistency = z.enum(['default', 'stale', 'consistent']);
const tlsValue = z.union([
  z.string(),
  z.instanceof(Buffer),
  z.array(z.union([z.string(), z.instanceof(Buffer)])),
]);

const clientOptionsSchema = z.looseObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  secure: z.boolean().optional(),
  defaults: z.looseObject({ token: z.string().optional(), dc: z.string().optional() }).optional(),
  ca: tlsValue.optional(),
  cert: tlsValue.optional(),
  key: tlsValue.optional(),
  rejectUnauthorized: z.boolean().optional(),
  servername: z.string().optional(),
  socketPath: z.string().optional(),
});

/** A ready node-consul client: duck-typed, so a client from another copy of the package works. */
export function isConsulClient(value: unknown): value is Consul {
  const v = value as { _get?: unknown; kv?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v._get === 'function' && typeof v.kv === 'object';
}

const clientSchema = z.union([z.custom<Consul>(isConsulClient), clientOptionsSchema]);

const discoveryOptionsSchema = z.strictObject({
  consul: z.union([clientSchema, z.array(clientSchema).min(1)]).optional(),
  wait: duration(MAX_WAIT_MS).optional(),
  consistency: consistency.optional(),
  dc: z.string().min(1).optional(),
  token: z.string().optional(),
  namespace: z.string().min(1).optional(),
  partition: z.string().min(1).optional(),
  httpAuth: z
    .union([z.string(), z.strictObject({ username: z.string().min(1), password: z.string() })])
    .optional(),
  requestTimeout: duration(Number.MAX_SAFE_INTEGER).optional(),
  nullWhenUnreachableFor: duration(Number.MAX_SAFE_INTEGER).optional(),
  retry: z
    .strictObject({
      initialDelayMs: z.number().positive().optional(),
      maxDelayMs: z.number().positive().optional(),
      permissionDeniedDelayMs: z.number().nonnegative().optional(),
    })
    .optional(),
  idleWakeups: z
    .strictObject({ burst: z.number().min(1).optional(), perSecond: z.number().positive().optional() })
    .optional(),
  env: z.record(z.string(), z.string().optional()).optional(),
  watchSessions: z.boolean().optional(),
  http2: z.boolean().optional(),
  splitPrefixes: z
    .union([
      z.literal(false),
      z.strictObject({
        minKeys: z.number().int().min(2).optional(),
        maxQueries: z.number().int().min(2).max(90).optional(),
        http1: z.boolean().optional(),
      }),
    ])
    .optional(),
  coalesce: z
    .union([
      z.literal(false),
      z.strictObject({
        minKeys: z.number().int().min(1).optional(),
        prefixOf: z.custom<(key: string) => string | null>((v) => typeof v === 'function').optional(),
      }),
    ])
    .optional(),
  meterProvider: z
    .custom<MeterProviderLike>((v) => typeof (v as MeterProviderLike | null)?.getMeter === 'function', {
      message: 'must be an OpenTelemetry MeterProvider (getMeter)',
    })
    .optional(),
  metrics: z.strictObject({ perKey: z.boolean().optional() }).optional(),
  logger: z
    .custom<LeaderLogger>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        (['debug', 'info', 'warn', 'error'] as const).every(
          (level) => typeof (v as LeaderLogger)[level] === 'function',
        ),
      { message: 'must have debug, info, warn and error methods (pino-compatible)' },
    )
    .optional(),
});

const callOptionsSchema = z.strictObject({
  schema: z
    .custom<StandardSchemaV1>(isStandardSchema, {
      message: 'must be a Standard Schema (zod 3.24+ or 4, valibot, arktype, ...)',
    })
    .optional(),
  decode: z
    .union([
      z.enum(['json', 'text']),
      z.custom<(bytes: Uint8Array) => unknown>((v) => typeof v === 'function'),
    ])
    .optional(),
  consistency: consistency.optional(),
  wait: duration(MAX_WAIT_MS).optional(),
  dc: z.string().min(1).optional(),
  namespace: z.string().min(1).optional(),
  partition: z.string().min(1).optional(),
  token: z.string().optional(),
  nullWhenUnreachableFor: duration(Number.MAX_SAFE_INTEGER).optional(),
  // current() and handle.ready() only: how long the caller waits (state/waits.ts).
  signal: z
    .custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'must be an AbortSignal' })
    .optional(),
  timeout: duration(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * The issue to report: when every branch of a union failed, the one that
 * got furthest into the value (`{ http1: 'yes' }` names `http1`, not the union).
 */
function reported(issue: z.core.$ZodIssue | undefined): z.core.$ZodIssue | undefined {
  if (issue?.code !== 'invalid_union') return issue;
  let inner: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first && first.path.length > (inner?.path.length ?? 0)) inner = first;
  }
  return inner ? { ...inner, path: [...issue.path, ...inner.path] } : issue;
}

function fail(where: string, error: z.ZodError): never {
  const issue = reported(error.issues[0]);
  const path = issue?.path.map(String).join('.') ?? '';
  const name = path ? `${where}.${path}` : where;
  const message =
    issue?.code === 'unrecognized_keys'
      ? `unknown option ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue?.message;
  throw new InvalidOptionError(`invalid option ${name}: ${message ?? 'invalid'}`);
}

export interface ResolvedDiscoveryOptions {
  readonly waitMs: number;
  readonly requestTimeoutMs: number;
  readonly consistency: Consistency;
  readonly dc?: string;
  readonly token?: string;
  readonly namespace?: string;
  readonly partition?: string;
  /** The `Authorization` header of basic auth, when configured. */
  readonly authorization?: string;
  readonly retry: RetryPolicy;
  readonly idleWakeups: IdleWakeupLimit;
}

export function parseDiscoveryOptions(options: unknown): LeaderDiscoveryOptions {
  const parsed = discoveryOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) fail('options', parsed.error);
  const opts = (options ?? {}) as LeaderDiscoveryOptions;
  checkToken('options.token', opts.token);
  const clients = opts.consul === undefined ? [] : Array.isArray(opts.consul) ? opts.consul : [opts.consul];
  clients.forEach((client: ConsulClientOptions | Consul, i) => {
    if (isConsulClient(client)) return;
    const where = Array.isArray(opts.consul) ? `options.consul.${i}` : 'options.consul';
    checkToken(`${where}.defaults.token`, client.defaults?.token);
  });
  return opts;
}

/** `'user:password'` or `{ username, password }` as an `Authorization` header (Consul's CLI splits at the first `:`). */
function basicAuth(source: string, auth: LeaderDiscoveryOptions['httpAuth']): string | undefined {
  if (auth === undefined || auth === '') return undefined;
  const pair = typeof auth === 'string' ? auth : `${auth.username}:${auth.password}`;
  checkToken(source, pair, 'credentials');
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

export function resolveDiscoveryDefaults(options: LeaderDiscoveryOptions): ResolvedDiscoveryOptions {
  const env = options.env ?? process.env;
  const namespace = options.namespace ?? (env.CONSUL_NAMESPACE || undefined);
  const partition = options.partition ?? (env.CONSUL_PARTITION || undefined);
  const authorization =
    options.httpAuth === undefined
      ? basicAuth('CONSUL_HTTP_AUTH', env.CONSUL_HTTP_AUTH)
      : basicAuth('options.httpAuth', options.httpAuth);
  return {
    ...(namespace === undefined ? {} : { namespace }),
    ...(partition === undefined ? {} : { partition }),
    ...(authorization === undefined ? {} : { authorization }),
    waitMs: parseDurationMs(options.wait ?? DEFAULT_WAIT),
    requestTimeoutMs: parseDurationMs(options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT),
    consistency: options.consistency ?? 'default',
    ...(options.dc === undefined ? {} : { dc: options.dc }),
    ...(options.token === undefined ? {} : { token: options.token }),
    retry: { ...DEFAULT_RETRY_POLICY, ...options.retry },
    idleWakeups: { ...DEFAULT_IDLE_WAKEUP_LIMIT, ...options.idleWakeups },
  };
}

export function parseCallOptions<T>(kind: KeyKind, key: unknown, options: unknown): LeaderOptions<T> {
  checkKey(kind, key);
  // Most calls pass no options: skip zod (about 3 µs a call, 10,000 calls follow a fleet).
  if (options === undefined || options === null) return {};
  const parsed = callOptionsSchema.safeParse(options);
  if (!parsed.success) fail('options', parsed.error);
  const call = options as LeaderOptions<T>;
  checkToken('options.token', call.token);
  return call;
}
