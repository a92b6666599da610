/**
 * `@consul-leader/discovery/http`: routing to the leader over HTTP. Users who never
 * route pay nothing for it: the main entry does not import this module.
 */
export { leaderHealth } from './health.js';
export type { LeaderHealthBody, LeaderHealthOptions } from './health.js';
export { NoLeaderError } from '../errors.js';
