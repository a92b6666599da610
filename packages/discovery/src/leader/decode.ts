/** Pure decoding of a leader key's value into the user's validated descriptor. */
import type { z } from 'zod';
import type { DescriptorIssue } from '@consul-leader/types';
import { InvalidDescriptorError } from '../errors.js';

/**
 * How the key's value becomes the descriptor passed to your schema:
 * - `'json'` (default): UTF-8 JSON; an empty or absent value decodes to `null`;
 * - `'text'`: the UTF-8 text as a string (`''` when empty);
 * - a function of the raw bytes, for any other format (throw to refuse).
 */
export type DecodeOption = 'json' | 'text' | ((bytes: Uint8Array) => unknown);

export type DecodeResult<T> =
  | { readonly ok: true; readonly node: T }
  | { readonly ok: false; readonly error: InvalidDescriptorError; readonly raw: string };

const RAW_TEXT_LIMIT = 4096;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function rawText(bytes: Uint8Array): string {
  const text = lenientUtf8.decode(bytes.subarray(0, RAW_TEXT_LIMIT));
  return bytes.length > RAW_TEXT_LIMIT ? `${text}…` : text;
}

function refused(message: string, bytes: Uint8Array, cause?: unknown): DecodeResult<never> {
  const issue: DescriptorIssue = { code: 'decode', message, path: [] };
  return {
    ok: false,
    error: new InvalidDescriptorError(`value cannot be decoded: ${message}`, [issue], { cause }),
    raw: rawText(bytes),
  };
}

function decodeValue(bytes: Uint8Array, decode: DecodeOption): unknown {
  if (typeof decode === 'function') return decode(bytes);
  const text = strictUtf8.decode(bytes);
  if (decode === 'text') return text;
  return text.trim() === '' ? null : (JSON.parse(text) as unknown);
}

/** Decodes a base64 value (null: the key has no value) and checks it with `schema`. */
export function decodeDescriptor<T>(
  valueBase64: string | null,
  decode: DecodeOption,
  schema: z.ZodType<T>,
): DecodeResult<T> {
  if (valueBase64 !== null && !BASE64.test(valueBase64)) {
    // Buffer.from would silently skip the bad characters.
    return refused('value is not base64', Buffer.from(valueBase64, 'latin1'));
  }
  const bytes = valueBase64 === null ? new Uint8Array(0) : Buffer.from(valueBase64, 'base64');
  let value: unknown;
  try {
    value = decodeValue(bytes, decode);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return refused(reason, bytes, cause);
  }
  let parsed: ReturnType<typeof schema.safeParse>;
  try {
    parsed = schema.safeParse(value);
  } catch (cause) {
    // A refinement of the user's schema threw instead of adding an issue.
    return refused(`schema threw: ${cause instanceof Error ? cause.message : String(cause)}`, bytes, cause);
  }
  if (parsed.success) return { ok: true, node: parsed.data };
  const issues: DescriptorIssue[] = parsed.error.issues.map((issue) => ({
    code: issue.code,
    message: issue.message,
    path: issue.path,
  }));
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
