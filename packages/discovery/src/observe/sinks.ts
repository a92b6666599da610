/** The telemetry sinks a discovery's options ask for. */
import type { LeaderDiscoveryOptions } from '../config/options.js';
import { createLogSink } from './log.js';
import { createMetricsSink } from './metrics.js';
import type { TelemetrySink } from './telemetry.js';

export function telemetrySinks(options: LeaderDiscoveryOptions): TelemetrySink[] {
  const sinks: TelemetrySink[] = [];
  const metrics = createMetricsSink(options.meterProvider, options.metrics);
  if (metrics) sinks.push(metrics);
  if (options.logger) sinks.push(createLogSink(options.logger));
  return sinks;
}
