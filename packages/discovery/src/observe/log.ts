/** The logger option (to be written). */
import type { LeaderLogger } from '../config/options.js';
import type { TelemetrySink } from './telemetry.js';

export function createLogSink(_logger: LeaderLogger): TelemetrySink {
  return {};
}
