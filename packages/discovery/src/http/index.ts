/**
 * `@consul-leader/discovery/http`: routing to the leader over HTTP. Users who never
 * route pay nothing for it: the main entry does not import this module. It needs the
 * `undici` package (an optional peer dependency of the SDK).
 */
export { leaderDispatcher } from './dispatcher.js';
export type { LeaderDispatcher } from './dispatcher.js';
export type { LeaderDispatcherOptions, LeaderRetryOptions } from './options.js';
export { createLeaderProxy } from './proxy.js';
export type { LeaderProxy, LeaderProxyErrorMode, LeaderProxyOptions, LeaderProxyTimeouts } from './proxy.js';
export { leaderHealth } from './health.js';
export type { LeaderHealthBody, LeaderHealthOptions } from './health.js';
export { NoLeaderError, LeaderRequestError } from '../errors.js';
