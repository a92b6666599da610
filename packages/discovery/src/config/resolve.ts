/** From options to what the streams use: read scopes, coalescing and splitting. */
import type { ClientSetup } from './client.js';
import {
  DEFAULT_COALESCE_MIN_KEYS,
  DEFAULT_HTTP1_MAX_QUERIES,
  DEFAULT_SPLIT,
  MIN_SUB_PREFIX_KEYS,
} from './defaults.js';
import type {
  LeaderDiscoveryOptions,
  LeaderOptions,
  ResolvedDiscoveryOptions,
  SplitPrefixesOption,
} from './options.js';
import { topLevelFolder, type CoalesceOptions } from '../key/coalesce.js';
import type { PlanLimits } from '../prefix/prefix-plan.js';
import { parseDurationMs } from '../wire/duration.js';
import type { ReadScope } from '../wire/requests.js';

/** Where and how a call reads its key: the call's options, else the discovery's, else the client's. */
export function resolveScope(
  key: string,
  call: LeaderOptions<unknown>,
  defaults: ResolvedDiscoveryOptions,
  setup: Pick<ClientSetup, 'dc' | 'token'>,
): ReadScope {
  const dc = call.dc ?? defaults.dc ?? setup.dc;
  const token = call.token ?? defaults.token ?? setup.token;
  const namespace = call.namespace ?? defaults.namespace;
  const partition = call.partition ?? defaults.partition;
  return {
    key,
    consistency: call.consistency ?? defaults.consistency,
    waitMs: call.wait === undefined ? defaults.waitMs : parseDurationMs(call.wait),
    requestTimeoutMs: defaults.requestTimeoutMs,
    ...(dc === undefined ? {} : { dc }),
    ...(token === undefined ? {} : { token }),
    ...(namespace === undefined ? {} : { namespace }),
    ...(partition === undefined ? {} : { partition }),
  };
}

export function resolveCoalesce(option: LeaderDiscoveryOptions['coalesce']): CoalesceOptions | undefined {
  if (option === false) return undefined;
  return { minKeys: DEFAULT_COALESCE_MIN_KEYS, prefixOf: topLevelFolder, ...option };
}

/** How a big prefix is split: the keys it must hold, and the plan's limits. */
export interface SplitSettings {
  readonly minKeys: number;
  readonly limits: PlanLimits;
}

/** Whether and how big prefixes are split: over HTTP/2 by default, over HTTP/1.1 when asked. */
export function resolveSplit(
  option: LeaderDiscoveryOptions['splitPrefixes'],
  multiplexed: boolean,
): SplitSettings | undefined {
  if (option === false) return undefined;
  if (!multiplexed && option?.http1 !== true) return undefined;
  const maxQueries = multiplexed ? DEFAULT_SPLIT.maxQueries : DEFAULT_HTTP1_MAX_QUERIES;
  const { minKeys = DEFAULT_SPLIT.minKeys, maxQueries: maxSubPrefixes = maxQueries }: SplitPrefixesOption =
    option ?? {};
  return { minKeys, limits: { maxSubPrefixes, minSubPrefixKeys: MIN_SUB_PREFIX_KEYS } };
}
