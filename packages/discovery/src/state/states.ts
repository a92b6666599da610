/** The public states, with the SDK's error classes: what `watch()` and the prefix calls emit. */
import type {
  ConsulReadMeta,
  LeaderState as StateWithError,
  SettledLeaderState as SettledWithError,
} from '@consul-leader/types';
import type { LeaderDiscoveryError } from '../errors.js';

/**
 * The full state of one leader key, discriminated on `status`:
 * `leader` | `vacant` | `invalid` | `unreachable`. Errors are the SDK's classes.
 */
export type LeaderState<T> = StateWithError<T, LeaderDiscoveryError>;

/** A state read from Consul (anything but `unreachable`). */
export type SettledLeaderState<T> = SettledWithError<T, LeaderDiscoveryError>;

/** Why a prefix cannot be read right now; the SDK retries after `retryInMs`. */
export interface PrefixOutage {
  readonly error: LeaderDiscoveryError;
  /** Failed reads in a row (1 for the first). */
  readonly attempt: number;
  readonly retryInMs: number;
}

/** Every leader key under a prefix, and whether Consul could be read. */
export interface PrefixState<T> {
  readonly prefix: string;
  /**
   * By full key: the keys under the prefix in Consul's last answer (a deleted
   * key is absent). While `unreachable`, each is `unreachable` with its `lastKnown`.
   */
  readonly states: ReadonlyMap<string, LeaderState<T>>;
  /** null while Consul answers. */
  readonly unreachable: PrefixOutage | null;
  /** The read meta of Consul's last answer for the prefix (null before any). */
  readonly consul: ConsulReadMeta | null;
}
