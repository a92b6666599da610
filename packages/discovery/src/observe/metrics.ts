/**
 * OpenTelemetry metrics of a discovery: a telemetry sink that records the hub's requests,
 * followed units and states on the instruments of issue #16 (README "Observability").
 *
 * `@opentelemetry/api` is an optional peer dependency, loaded synchronously when this module
 * is imported (no top-level await: the package is also `require()`d from CommonJS). Without
 * it, a discovery has metrics only when given a `meterProvider` (the SDK only calls its
 * `getMeter`). Without a `meterProvider`, the global one is read when the discovery is
 * created; while it is OpenTelemetry's no-op provider there is no sink at all (no cost).
 */
import { createRequire } from 'node:module';
import type {
  Attributes,
  Counter,
  Histogram,
  Meter,
  MetricOptions,
  MetricsAPI,
  ObservableGauge,
  ObservableResult,
  UpDownCounter,
} from '@opentelemetry/api';
import type { MeterProviderLike, MetricsOptions } from '../config/options.js';
import type { LeaderState, PrefixOutage } from '../state/states.js';
import type { RequestInfo, RequestKind, RequestResult } from './requests.js';
import type { FollowedUnit, TelemetrySink } from './telemetry.js';

/** What the SDK uses of `@opentelemetry/api`. */
interface OpenTelemetryApi {
  readonly metrics: MetricsAPI;
  createNoopMeter(): Meter;
}

const load = createRequire(import.meta.url);

/** `@opentelemetry/api` when the application has it installed. */
const api: OpenTelemetryApi | undefined = (() => {
  try {
    return load('@opentelemetry/api') as OpenTelemetryApi;
  } catch {
    return undefined;
  }
})();

const METER_NAME = '@consul-leader/discovery';

/** This package's version (dist/observe/metrics.js and src/observe/metrics.ts: ../../package.json). */
const METER_VERSION: string | undefined = (() => {
  try {
    const version = (load('../../package.json') as { version?: unknown }).version;
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
})();

/** `ValueType.INT` and `ValueType.DOUBLE` (the api's enum: usable without the api loaded). */
const INT = 0;
const DOUBLE = 1;

/** Durations of reads: from a local agent's milliseconds to a request timeout's seconds. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Vacancies: a lock handed over at once, a lock-delay (15 s by default), a dead leader's TTL. */
const VACANCY_BUCKETS = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600,
];

/** Kinds whose requests read a prefix: sent only for followed prefixes, never by `current()`. */
const PREFIX_KINDS: ReadonlySet<RequestKind> = new Set<RequestKind>([
  'kv_recurse',
  'kv_keys',
  'session_list',
]);

/**
 * The SDK's metrics sink for `provider` (default: the global provider of `@opentelemetry/api`),
 * or undefined when metrics would go nowhere (the api is not installed and no provider was
 * given, or the global provider is the no-op one).
 */
export function createMetricsSink(
  provider: MeterProviderLike | undefined,
  options: MetricsOptions = {},
): TelemetrySink | undefined {
  try {
    const from = provider ?? api?.metrics.getMeterProvider();
    if (!from) return undefined;
    const meter = from.getMeter(METER_NAME, METER_VERSION) as Meter;
    if (api && meter === api.createNoopMeter()) return undefined;
    return new MetricsSink(instrumentsOf(meter), options.perKey === true);
  } catch {
    return undefined;
  }
}

/**
 * The instruments of one meter, shared by every discovery that records on it: the
 * observable gauges have one callback per meter, summing (unreachable) or taking the
 * highest (last contact) over the discoveries that follow something right now. (One callback
 * per discovery would observe the same attribute set twice, and the last one would win.)
 */
class Instruments {
  readonly requests: Counter;
  readonly requestDuration: Histogram;
  readonly changes: Counter;
  readonly followed: UpDownCounter;
  readonly vacantDuration: Histogram;
  /** Sinks following at least one unit. */
  readonly active = new Set<MetricsSink>();

  constructor(meter: Meter) {
    this.requests = meter.createCounter('consul_leader.requests', {
      description: 'HTTP requests to Consul, counted when they end',
      unit: '{request}',
      valueType: INT,
    });
    this.requestDuration = meter.createHistogram('consul_leader.request.duration', {
      description: 'Duration of non-blocking reads of Consul, failed ones included',
      unit: 's',
      advice: { explicitBucketBoundaries: REQUEST_BUCKETS },
    } satisfies MetricOptions);
    this.changes = meter.createCounter('consul_leader.changes', {
      description: 'States emitted for followed keys and prefixes, once per key or prefix',
      unit: '{change}',
      valueType: INT,
    });
    this.followed = meter.createUpDownCounter('consul_leader.followed', {
      description: 'Keys and prefixes followed',
      unit: '{scope}',
      valueType: INT,
    });
    this.vacantDuration = meter.createHistogram('consul_leader.vacant.duration', {
      description:
        'How long a key was without a leader after having one, recorded when a leader is known again',
      unit: 's',
      advice: { explicitBucketBoundaries: VACANCY_BUCKETS },
    } satisfies MetricOptions);
    const unreachable: ObservableGauge = meter.createObservableGauge('consul_leader.unreachable', {
      description: 'Followed keys and prefixes Consul cannot be read for right now',
      unit: '{scope}',
      valueType: INT,
    });
    const lastContact: ObservableGauge = meter.createObservableGauge('consul_leader.last_contact', {
      description: 'The highest X-Consul-LastContact among followed scopes (staleness of stale reads)',
      unit: 's',
      valueType: DOUBLE,
    });
    unreachable.addCallback((result: ObservableResult) => {
      let count = 0;
      for (const sink of this.active) count += sink.unreachableUnits;
      result.observe(count);
    });
    lastContact.addCallback((result: ObservableResult) => {
      // 0 when no followed scope has answered: a cumulative reader would otherwise keep
      // exporting the last value observed.
      let highest = 0;
      for (const sink of this.active) highest = Math.max(highest, sink.lastContactMs());
      result.observe(highest / 1000);
    });
  }
}

const instrumentsByMeter = new WeakMap<Meter, Instruments>();

function instrumentsOf(meter: Meter): Instruments {
  let instruments = instrumentsByMeter.get(meter);
  if (!instruments) {
    instruments = new Instruments(meter);
    instrumentsByMeter.set(meter, instruments);
  }
  return instruments;
}

/** A followed unit: whether Consul can be read for it, and its keys' vacancies. */
interface Unit {
  unreachable: boolean;
  /**
   * By key (a key unit: its own key), for keys that had a leader: -1 while no vacancy runs,
   * else when (performance.now()) the vacancy started. Keys that never had one are absent.
   */
  readonly leaders: Map<string, number>;
}

const NO_VACANCY = -1;

/** One value per request kind. */
const perKind = <V>(make: () => V): Record<RequestKind, V> => ({
  kv: make(),
  kv_recurse: make(),
  kv_keys: make(),
  session_info: make(),
  session_list: make(),
});

const FOLLOWED_ATTRIBUTES: Readonly<Record<FollowedUnit['type'], Attributes>> = {
  key: Object.freeze({ type: 'key' }),
  prefix: Object.freeze({ type: 'prefix' }),
};

const NO_ATTRIBUTES: Attributes = Object.freeze({});

class MetricsSink implements TelemetrySink {
  /** Followed units that Consul cannot be read for right now (consul_leader.unreachable). */
  unreachableUnits = 0;

  readonly #instruments: Instruments;
  readonly #perKey: boolean;
  readonly #units = new Map<string, Unit>();
  /** Followed units by key, of each type: which request keys are followed scopes. */
  readonly #keys = new Map<string, number>();
  readonly #prefixes = new Map<string, number>();
  /** The latest X-Consul-LastContact (ms) by kind and request key, for followed scopes only. */
  readonly #lastContact = perKind(() => new Map<string, number>());
  /** Attribute sets by kind, blocking (0 or 1) and outcome: a request allocates none. */
  readonly #byRequest = perKind((): readonly [Map<string, Attributes>, Map<string, Attributes>] => [
    new Map(),
    new Map(),
  ]);
  /** Attribute sets by kind and outcome (request.duration). */
  readonly #byRead = perKind(() => new Map<string, Attributes>());
  readonly #byStatus = new Map<string, Attributes>();

  constructor(instruments: Instruments, perKey: boolean) {
    this.#instruments = instruments;
    this.#perKey = perKey;
  }

  request(info: RequestInfo, result: RequestResult, durationMs: number): void {
    try {
      const { kind, key, blocking } = info;
      const { outcome } = result;
      const instruments = this.#instruments;
      instruments.requests.add(
        1,
        this.#perKey ? { kind, blocking, outcome, key } : this.#requestAttributes(kind, blocking, outcome),
      );
      if (!blocking) {
        instruments.requestDuration.record(
          durationMs / 1000,
          this.#perKey ? { kind, outcome, key } : this.#durationAttributes(kind, outcome),
        );
      }
      if (result.lastContactMs !== undefined && this.#units.size > 0 && this.#followedScope(kind, key)) {
        this.#lastContact[kind].set(key, result.lastContactMs);
      }
    } catch {
      // A sink never throws into the SDK.
    }
  }

  followed(unit: FollowedUnit, delta: 1 | -1): void {
    try {
      this.#instruments.followed.add(delta, FOLLOWED_ATTRIBUTES[unit.type]);
      const byKey = unit.type === 'key' ? this.#keys : this.#prefixes;
      if (delta === 1) {
        if (this.#units.has(unit.id)) return;
        this.#units.set(unit.id, { unreachable: false, leaders: new Map() });
        byKey.set(unit.key, (byKey.get(unit.key) ?? 0) + 1);
        this.#instruments.active.add(this);
        return;
      }
      const entry = this.#units.get(unit.id);
      if (!entry) return;
      this.#units.delete(unit.id);
      if (entry.unreachable) this.unreachableUnits -= 1;
      const left = (byKey.get(unit.key) ?? 1) - 1;
      if (left > 0) byKey.set(unit.key, left);
      else byKey.delete(unit.key);
      if (!this.#keys.has(unit.key) && !this.#prefixes.has(unit.key)) {
        for (const contacts of Object.values(this.#lastContact)) contacts.delete(unit.key);
      }
      if (this.#units.size === 0) {
        for (const contacts of Object.values(this.#lastContact)) contacts.clear();
        this.#instruments.active.delete(this);
      }
    } catch {
      // A sink never throws into the SDK.
    }
  }

  state(unit: FollowedUnit, key: string, state: LeaderState<unknown>): void {
    try {
      const { status } = state;
      this.#instruments.changes.add(1, this.#perKey ? { status, key } : this.#statusAttributes(status));
      const entry = this.#units.get(unit.id);
      if (!entry) return;
      // A key's own states say whether it can be read; a prefix's outages come as reachable().
      if (unit.type === 'key') this.#setUnreachable(entry, status === 'unreachable');
      this.#vacancy(entry, key, status);
    } catch {
      // A sink never throws into the SDK.
    }
  }

  /** Consul cannot be read for the unit (each failed read), or can again (`null`). */
  reachable(unit: FollowedUnit, outage: PrefixOutage | null): void {
    try {
      const entry = this.#units.get(unit.id);
      if (entry) this.#setUnreachable(entry, outage !== null);
      // A prefix's outage is no key state: each failed read is one `unreachable` state of
      // the prefix's watch (a key's are counted as its states, in state()).
      if (outage !== null && unit.type === 'prefix') {
        this.#instruments.changes.add(
          1,
          this.#perKey ? { status: 'unreachable', key: unit.key } : this.#statusAttributes('unreachable'),
        );
      }
    } catch {
      // A sink never throws into the SDK.
    }
  }

  /** The highest last contact (ms) among the followed scopes, 0 when none is known. */
  lastContactMs(): number {
    let highest = 0;
    for (const contacts of Object.values(this.#lastContact)) {
      for (const [key, ms] of contacts) {
        if (!this.#covered(key)) contacts.delete(key);
        else if (ms > highest) highest = ms;
      }
    }
    return highest;
  }

  #requestAttributes(kind: RequestKind, blocking: boolean, outcome: string): Attributes {
    const byOutcome = this.#byRequest[kind][blocking ? 1 : 0];
    let attributes = byOutcome.get(outcome);
    if (!attributes) {
      attributes = Object.freeze({ kind, blocking, outcome });
      byOutcome.set(outcome, attributes);
    }
    return attributes;
  }

  #durationAttributes(kind: RequestKind, outcome: string): Attributes {
    const byOutcome = this.#byRead[kind];
    let attributes = byOutcome.get(outcome);
    if (!attributes) {
      attributes = Object.freeze({ kind, outcome });
      byOutcome.set(outcome, attributes);
    }
    return attributes;
  }

  #statusAttributes(status: string): Attributes {
    let attributes = this.#byStatus.get(status);
    if (!attributes) {
      attributes = Object.freeze({ status });
      this.#byStatus.set(status, attributes);
    }
    return attributes;
  }

  #setUnreachable(entry: Unit, unreachable: boolean): void {
    if (entry.unreachable === unreachable) return;
    entry.unreachable = unreachable;
    this.unreachableUnits += unreachable ? 1 : -1;
  }

  /**
   * consul_leader.vacant.duration: from the first state without a leader (vacant or invalid)
   * after a leader, to the next leader. `unreachable` neither starts nor ends a vacancy.
   */
  #vacancy(entry: Unit, key: string, status: LeaderState<unknown>['status']): void {
    if (status === 'leader') {
      const since = entry.leaders.get(key);
      if (since !== undefined && since !== NO_VACANCY) {
        this.#instruments.vacantDuration.record(
          (performance.now() - since) / 1000,
          this.#perKey ? { key } : NO_ATTRIBUTES,
        );
      }
      if (since !== NO_VACANCY) entry.leaders.set(key, NO_VACANCY);
    } else if (status !== 'unreachable' && entry.leaders.get(key) === NO_VACANCY) {
      entry.leaders.set(key, performance.now());
    }
  }

  /**
   * Whether a request for `key` reads a followed scope: a followed key or prefix, or a prefix
   * read for followed keys (coalescing) or a part of a followed prefix (split prefixes).
   * One-off reads (`current()`) of keys nobody follows are not.
   */
  #followedScope(kind: RequestKind, key: string): boolean {
    return this.#keys.has(key) || this.#prefixes.has(key) || PREFIX_KINDS.has(kind);
  }

  /** Whether a request key kept in #lastContact is still a followed scope (checked on collection). */
  #covered(key: string): boolean {
    if (this.#keys.has(key) || this.#prefixes.has(key)) return true;
    for (const prefix of this.#prefixes.keys()) if (key.startsWith(prefix)) return true;
    for (const followed of this.#keys.keys()) if (followed.startsWith(key)) return true;
    return false;
  }
}
