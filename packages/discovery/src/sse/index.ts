export { serveLeaderEvents, DEFAULT_HEARTBEAT_MS } from './serve.js';
export type { ServeLeaderEventsOptions, LeaderEventStream } from './serve.js';
export {
  leaderEvents,
  eventJson,
  leaderEventJson,
  formatSseEvent,
  formatSseComment,
  formatSseRetry,
  outageInfo,
  LEADER_EVENT_NAMES,
} from './events.js';
export type { LeaderEvent, ConsulOutageInfo } from './events.js';
