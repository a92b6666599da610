/**
 * States made safe for surfaces that write them as JSON (server-sent events, the
 * CLI): a descriptor any value can produce (nested 3,000 deep, say) may not survive
 * `JSON.stringify`. Such a key is then shown `invalid` on that surface, with the
 * reason, and every other key is written as usual.
 */
import type { ErrorInfo, Leader, LeaderState, SettledLeaderState } from '@consul-leader/types';
import { InvalidDescriptorError } from '../errors.js';
import { rawText, valueBytes } from './decode.js';
import { MAX_WRITABLE_DEPTH } from '../config/defaults.js';

type Replacer = (key: string, value: unknown) => unknown;

// The value each Leader was decoded from, so that a surface can still show it raw.
const rawValues = new WeakMap<object, string | null>();

/** Remembers the base64 value `leader`'s descriptor was decoded from (see `writableState`). */
export function rememberRaw<L extends object>(leader: L, valueBase64: string | null): L {
  rawValues.set(leader, valueBase64);
  return leader;
}

/** Whether `value` nests objects and arrays deeper than `max` (iterative: no stack to overflow). */
function deeperThan(value: unknown, max: number): boolean {
  const seen = new Set<object>();
  const pending: Array<[unknown, number]> = [[value, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== 'object' || item === null || seen.has(item)) continue;
    if (depth >= max) return true;
    seen.add(item);
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

/** Why `value` cannot be written by `JSON.stringify(value, replacer)`, or undefined when it can. */
export function unwritable(value: unknown, replacer: Replacer): string | undefined {
  if (deeperThan(value, MAX_WRITABLE_DEPTH)) {
    return `it is nested too deeply (more than ${MAX_WRITABLE_DEPTH} levels)`;
  }
  try {
    JSON.stringify(value, replacer);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function invalidFor<T, E extends ErrorInfo>(
  state: Extract<SettledLeaderState<T, E>, { status: 'leader' }>,
  reason: string,
): SettledLeaderState<T, E | InvalidDescriptorError> {
  const { leader, consul } = state;
  const { key, lockIndex, modifyIndex, createIndex, flags, session } = leader as Leader<T>;
  const message = `the descriptor cannot be written as JSON: ${reason}`;
  const issues = [{ code: 'unwritable', message, path: [] }];
  const base64 = rawValues.get(leader);
  return {
    status: 'invalid',
    key: state.key,
    entry: { key, lockIndex, modifyIndex, createIndex, flags },
    session,
    raw: base64 === undefined ? '' : rawText(valueBytes(base64)),
    error: new InvalidDescriptorError(message, issues),
    issues,
    consul,
  };
}

function writableSettled<T, E extends ErrorInfo>(
  state: SettledLeaderState<T, E>,
  replacer: Replacer,
): SettledLeaderState<T, E | InvalidDescriptorError> {
  if (state.status !== 'leader') return state;
  const reason = unwritable(state.leader.node, replacer);
  return reason === undefined ? state : invalidFor(state, reason);
}

/**
 * `state`, or, when its leader's descriptor (or, while unreachable, its last known
 * one's) cannot be written as JSON with `replacer`, the same key as `invalid` with an
 * `unwritable` issue and the raw value.
 */
export function writableState<T, E extends ErrorInfo>(
  state: LeaderState<T, E>,
  replacer: Replacer,
): LeaderState<T, E | InvalidDescriptorError> {
  if (state.status !== 'unreachable') return writableSettled(state, replacer);
  if (state.lastKnown === null) return state;
  const lastKnown = writableSettled(state.lastKnown, replacer);
  return lastKnown === state.lastKnown ? state : { ...state, lastKnown };
}

/**
 * `JSON.stringify(value, replacer)`; when that throws (a descriptor too deep, say),
 * the JSON of `fallback()`: the same payload with its states made writable.
 */
export function jsonOr(value: unknown, replacer: Replacer, fallback: () => unknown): string {
  try {
    return JSON.stringify(value, replacer);
  } catch {
    return JSON.stringify(fallback(), replacer);
  }
}
