export { createLeaderDiscovery } from './discovery.js';
export * from './sse/index.js';
export type {
  LeaderDiscovery,
  LeaderState,
  SettledLeaderState,
  PrefixState,
  PrefixOutage,
  TextOptions,
} from './discovery.js';
export type {
  Consistency,
  ConsulClientOptions,
  Duration,
  LeaderDiscoveryOptions,
  LeaderOptions,
  SplitPrefixesOption,
  TlsValue,
  LeaderLogger,
  MeterProviderLike,
  MetricsOptions,
} from './config/options.js';
export type { RequestChannelContext, StateChannelMessage } from './observe/channels.js';
export type { RequestKind } from './observe/request-types.js';
export type { DecodeOption } from './state/decode.js';
export type { LeaderHandle } from './state/follow-handle.js';
export type { LiveObservable } from './state/live.js';
export type { StandardSchemaV1 } from './state/standard-schema.js';
export type { WaitOptions } from './state/waits.js';
export type { RetryPolicy } from './watch/retry-policy.js';
export type { IdleWakeupLimit } from './watch/idle-wakeups.js';
export {
  LeaderDiscoveryError,
  ConsulUnreachableError,
  ConsulHttpError,
  PermissionDeniedError,
  InvalidResponseError,
  InvalidDescriptorError,
  InvalidOptionError,
  DiscoveryClosedError,
  AbortedError,
  TimeoutError,
  NoLeaderError,
  LeaderRequestError,
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
