/** Pure decoding of a leader key's value into the user's validated descriptor. */
import { promiseHooks } from 'node:v8';
import type { DescriptorIssue } from '@consul-leader/types';
import { InvalidDescriptorError } from '../errors.js';
import type { StandardSchemaV1 } from './standard-schema.js';
import { RAW_TEXT_LIMIT } from '../config/defaults.js';

/**
 * How the key's value becomes the descriptor passed to your schema:
 * - `'json'` (default): UTF-8 JSON; an empty or absent value decodes to `null`;
 * - `'text'`: the UTF-8 text as a string (`''` when empty);
 * - a function of the raw bytes, for any other format (throw to refuse). It must
 *   be synchronous: a function that returns a Promise makes the value `invalid`.
 */
export type DecodeOption = 'json' | 'text' | ((bytes: Uint8Array) => unknown);

export type DecodeResult<T> =
  | { readonly ok: true; readonly node: T }
  | { readonly ok: false; readonly error: InvalidDescriptorError; readonly raw: string };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

/** The value as text for a human (invalid bytes replaced), cut at 4 KiB. */
export function rawText(bytes: Uint8Array): string {
  const text = lenientUtf8.decode(bytes.subarray(0, RAW_TEXT_LIMIT));
  return bytes.length > RAW_TEXT_LIMIT ? `${text}…` : text;
}

/** The bytes of a KV value (base64 from Consul; null: the key has no value). */
export function valueBytes(valueBase64: string | null): Uint8Array {
  return valueBase64 === null ? new Uint8Array(0) : Buffer.from(valueBase64, 'base64');
}

function refused(message: string, bytes: Uint8Array, cause?: unknown): DecodeResult<never> {
  const issue: DescriptorIssue = { code: 'decode', message, path: [] };
  return {
    ok: false,
    error: new InvalidDescriptorError(`value cannot be decoded: ${message}`, [issue], { cause }),
    raw: rawText(bytes),
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

const ignore = (): void => undefined;

/** What the user's code did: returned a value, went async (a thenable, or threw after making promises), or threw. */
type Outcome<R> =
  | { readonly kind: 'value'; readonly value: R }
  | { readonly kind: 'async'; readonly cause?: unknown }
  | { readonly kind: 'threw'; readonly cause: unknown };

/**
 * Runs the user's code (`decode`, the schema) and tells whether it went async. The
 * promises it made are collected (V8's promise hook, only during the call): when it
 * went async, each gets a rejection handler, so that a rejecting async transform,
 * which zod starts and then abandons on a synchronous parse, is no unhandled
 * rejection that ends the process. A thenable it returns is handled too.
 */
function synchronously<R>(run: () => R): Outcome<R> {
  const made: Promise<unknown>[] = [];
  const stop = promiseHooks.onInit((promise) => made.push(promise));
  let outcome: Outcome<R>;
  try {
    const value = run();
    outcome = isThenable(value) ? { kind: 'async' } : { kind: 'value', value };
    if (outcome.kind === 'async') Promise.resolve(value).then(undefined, ignore);
  } catch (cause) {
    const async = made.length > 0 || (cause instanceof Error && cause.constructor.name === '$ZodAsyncError');
    outcome = async ? { kind: 'async', cause } : { kind: 'threw', cause };
  } finally {
    stop();
  }
  if (outcome.kind === 'async') for (const promise of made) promise.then(undefined, ignore);
  return outcome;
}

const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause));

function decodeValue(bytes: Uint8Array, decode: DecodeOption): unknown {
  if (typeof decode === 'function') {
    const decoded = synchronously(() => decode(bytes));
    if (decoded.kind === 'value') return decoded.value;
    if (decoded.kind === 'threw' || decoded.cause !== undefined) throw decoded.cause;
    throw new Error('decode returned a Promise: decoding must be synchronous');
  }
  const text = strictUtf8.decode(bytes);
  if (decode === 'text') return text;
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    // The Go seed's contenders write their session ID, others a bare word: plain text.
    if (/^\s*[[{"]/.test(text)) throw cause;
    throw new SyntaxError(`${errorText(cause)} (the value looks like plain text: decode: 'text' reads it)`, {
      cause,
    });
  }
}

/** zod's own parse result (every zod since 3, classic API). */
interface ZodLike<T> {
  safeParse(
    value: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: readonly StandardSchemaV1.Issue[] } };
}

/**
 * Checks `value` with the user's schema. zod's classic schemas are asked through their
 * own `safeParse`, which throws for an async schema or a throwing refinement (told apart
 * by `synchronously`): their Standard Schema `validate` turns both into a Promise. Any
 * other validator (zod mini, valibot, arktype) through Standard Schema.
 */
function validate<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
): StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>> {
  const zod = schema as Partial<ZodLike<T>>;
  if (typeof zod.safeParse !== 'function') return schema['~standard'].validate(value);
  const parsed = (zod as ZodLike<T>).safeParse(value);
  return parsed.success ? { value: parsed.data } : { issues: parsed.error.issues };
}

/** A validator's issue as the SDK reports it: a code (zod's, or `invalid`), the message, the path. */
function descriptorIssue(issue: StandardSchemaV1.Issue): DescriptorIssue {
  const { code } = issue as { code?: unknown };
  const path = (issue.path ?? []).map((segment) => (typeof segment === 'object' ? segment.key : segment));
  return { code: typeof code === 'string' ? code : 'invalid', message: issue.message, path };
}

/** Decodes a base64 value (null: the key has no value) and checks it with `schema`. */
export function decodeDescriptor<T>(
  valueBase64: string | null,
  decode: DecodeOption,
  schema: StandardSchemaV1<unknown, T>,
): DecodeResult<T> {
  if (valueBase64 !== null && !BASE64.test(valueBase64)) {
    // Buffer.from would silently skip the bad characters.
    return refused('value is not base64', Buffer.from(valueBase64, 'latin1'));
  }
  const bytes = valueBytes(valueBase64);
  let value: unknown;
  try {
    value = decodeValue(bytes, decode);
  } catch (cause) {
    return refused(errorText(cause), bytes, cause);
  }
  const checked = synchronously(() => validate(schema, value));
  if (checked.kind === 'async') {
    const detail = checked.cause === undefined ? '' : ` (${errorText(checked.cause)})`;
    return refused(`the schema is async: its checks must be synchronous${detail}`, bytes, checked.cause);
  }
  // A refinement of the user's schema threw instead of adding an issue.
  if (checked.kind === 'threw')
    return refused(`schema threw: ${errorText(checked.cause)}`, bytes, checked.cause);
  // Not a thenable (that is `async`): a result.
  const result = checked.value as StandardSchemaV1.Result<T>;
  if (result.issues === undefined) return { ok: true, node: result.value };
  const issues = result.issues.map(descriptorIssue);
  const first = issues[0];
  const where = first && first.path.length > 0 ? ` at ${first.path.map(String).join('.')}` : '';
  return {
    ok: false,
    error: new InvalidDescriptorError(
      `value does not match the descriptor schema${where}: ${first?.message ?? 'invalid'}`,
      issues,
    ),
    raw: rawText(bytes),
  };
}
