/** OpenTelemetry metrics of a discovery (to be written). */
import type { MeterProviderLike, MetricsOptions } from '../config/options.js';
import type { TelemetrySink } from './telemetry.js';

export function createMetricsSink(
  _provider: MeterProviderLike | undefined,
  _options: MetricsOptions = {},
): TelemetrySink | undefined {
  return undefined;
}
