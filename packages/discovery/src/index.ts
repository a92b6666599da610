export { createLeaderDiscovery } from './discovery.js';
export * from './sse/index.js';
export type {
  LeaderDiscovery,
  LeaderState,
  SettledLeaderState,
  PrefixState,
  PrefixOutage,
} from './discovery.js';
export type {
  Consistency,
  ConsulClientOptions,
  Duration,
  LeaderDiscoveryOptions,
  LeaderOptions,
  SplitPrefixesOption,
} from './config/options.js';
export type { DecodeOption } from './state/decode.js';
export type { LeaderHandle } from './state/follow-handle.js';
export type { RetryPolicy } from './watch/retry-policy.js';
export type { IdleWakeupLimit } from './watch/blocking-query.js';
export {
  LeaderDiscoveryError,
  ConsulUnreachableError,
  ConsulHttpError,
  PermissionDeniedError,
  InvalidResponseError,
  InvalidDescriptorError,
  InvalidOptionError,
  DiscoveryClosedError,
  isLeaderDiscoveryError,
} from './errors.js';
export type { LeaderErrorCode, UnreachableReason } from './errors.js';
export type {
  Leader,
  LeaderSession,
  LeaderEntry,
  VacantReason,
  ConsulReadMeta,
  DescriptorIssue,
  ErrorInfo,
} from '@consul-leader/types';
