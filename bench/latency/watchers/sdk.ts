/**
 * (d) The SDK: `createLeaderDiscovery(...).leader(key)` with the default schema (any JSON)
 *     and no meter provider registered (the default a user gets);
 * (e) the same with `watchSessions: true`;
 * (f) the same as (d) with OpenTelemetry metrics on: an SDK `MeterProvider` whose
 *     `PeriodicExportingMetricReader` collects every METRICS_EXPORT_INTERVAL_MS into an
 *     `InMemoryMetricExporter` (cumulative), passed as `meterProvider`. Collection runs in
 *     the watcher's thread during the run, as in production.
 */
import { type LeaderDiscoveryOptions, createLeaderDiscovery } from '@consul-leader/discovery';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { seqOf } from '../protocol.js';
import type { Watcher, WatcherContext } from './watcher.js';

/** (f)'s reader: how often it collects and exports. */
export const METRICS_EXPORT_INTERVAL_MS = 1_000;

function start({ target, emit }: WatcherContext, options: LeaderDiscoveryOptions): Watcher {
  const discovery = createLeaderDiscovery({ ...options, consul: { host: target.host, port: target.port } });
  const subscription = discovery
    .leader(target.key)
    .subscribe((leader) => emit(leader ? { session: leader.session.id, seq: seqOf(leader.node) } : null));

  return {
    async stop() {
      subscription.unsubscribe();
      discovery.close();
    },
  };
}

export const startSdk = (context: WatcherContext): Watcher => start(context, {});

export const startSdkWithSessions = (context: WatcherContext): Watcher =>
  start(context, { watchSessions: true });

/** Whether an export holds a data point of the SDK's request counter (the metrics are on). */
function carriesRequests(metrics: ResourceMetrics): boolean {
  return metrics.scopeMetrics.some((scope) =>
    scope.metrics.some(
      (metric) => metric.descriptor.name === 'consul_leader.requests' && metric.dataPoints.length > 0,
    ),
  );
}

export function startSdkWithMetrics(context: WatcherContext): Watcher {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const provider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: METRICS_EXPORT_INTERVAL_MS }),
    ],
  });
  const watcher = start(context, { meterProvider: provider });
  let exports = 0;
  let seen = 0;
  return {
    metricExports() {
      // Counted on demand (between changes), not in the exporter's path.
      const all = exporter.getMetrics();
      for (; seen < all.length; seen += 1) {
        if (carriesRequests(all[seen] as ResourceMetrics)) exports += 1;
      }
      exporter.reset();
      seen = 0;
      return exports;
    },
    async stop() {
      await watcher.stop();
      await provider.shutdown();
    },
  };
}
