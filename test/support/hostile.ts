/**
 * Hostile KV values for tests (issue #12): the raw bytes a broken, old or
 * malicious contender can write to a leader key, as fast-check arbitraries, and
 * what the SDK must make of them (`expectedStatus`).
 */
import fc from 'fast-check';

/** Consul refuses a value of 512 KiB or more (`kv_max_value_size`); every value here stays under it. */
export const MAX_VALUE_BYTES = 512 * 1024 - 1;

/** One value to write: its family, a short description for failure messages, and its bytes. */
export interface Hostile {
  readonly kind: string;
  readonly label: string;
  readonly bytes: Buffer;
}

/** A value; fast-check prints it as `kind: label (N bytes)`, not as half a megabyte of bytes. */
export function hostile(kind: string, label: string, bytes: Buffer | string): Hostile {
  const value: Hostile = { kind, label, bytes: typeof bytes === 'string' ? Buffer.from(bytes) : bytes };
  if (value.bytes.length > MAX_VALUE_BYTES) throw new RangeError(`${kind}: ${value.bytes.length} bytes`);
  Object.defineProperty(value, fc.toStringMethod, {
    value: () => `${kind}: ${label} (${value.bytes.length} bytes)`,
  });
  return value;
}

export const nestedArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
export const nestedObjects = (depth: number, leaf = '1'): string =>
  '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);

/** How deep `bytes` nest as JSON (brackets outside strings); iterative, for any depth. */
export function nestingDepth(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i += 1) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i += 1;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, (depth += 1));
    else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return max;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * What `watch(key)` must show for a value held by a session, with the default
 * decoding (UTF-8 JSON, blank is `null`) and schema (any JSON value): `leader`
 * when the bytes are UTF-8 JSON or blank, `invalid` otherwise.
 */
export function expectedStatus(bytes: Uint8Array): 'leader' | 'invalid' {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return 'invalid';
  }
  if (text.trim() === '') return 'leader';
  try {
    JSON.parse(text);
    return 'leader';
  } catch {
    return 'invalid';
  }
}

// ---- the families of issue #12

/**
 * Nesting depths: writable ones, the range where JSON.stringify gives up on Node's
 * default stack (about 2,240 nested arrays, 1,460 `[{"a":` pairs, 4,180 objects), and
 * far beyond.
 */
const depth = (max: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min: 1, max: 2_000 }),
    { arbitrary: fc.integer({ min: 2_000, max: 6_000 }), weight: 2 },
    { arbitrary: fc.integer({ min: 6_000, max }), weight: 2 },
  );

/** `[[[…]]]` and `{"a":{"a":…}}` up to 100,000 deep, both mixed, and left open (not JSON). */
export const deepNesting: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: depth(100_000).map((n) => hostile('deep-arrays', `${n} deep`, nestedArrays(n))), weight: 2 },
  // 6 bytes a level: 87,000 levels stay under 512 KiB.
  { arbitrary: depth(87_000).map((n) => hostile('deep-objects', `${n} deep`, nestedObjects(n))), weight: 2 },
  {
    arbitrary: depth(40_000).map((n) =>
      hostile('deep-mixed', `${n} [{"a": pairs`, '[{"a":'.repeat(n) + 'null' + '}]'.repeat(n)),
    ),
    weight: 2,
  },
  depth(100_000).map((n) => hostile('deep-unclosed', `${n} deep, never closed`, '['.repeat(n))),
);

/** Byte sequences no UTF-8 decoder accepts. */
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe],
  [0x80], // a continuation byte alone
  [0xbf],
  [0xc0, 0x80], // overlong NUL
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf], // overlong '/'
  [0xe2, 0x82], // a 3-byte sequence cut short
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate (U+D800)
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xf8, 0x88, 0x80, 0x80, 0x80], // a 5-byte form
  [0xc3], // cut short at the end
];

const asciiText = fc.string({ maxLength: 12 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x'));

/** Invalid UTF-8 (at least one bad sequence) raw, inside a JSON string, or as a JSON key. */
export const invalidUtf8: fc.Arbitrary<Hostile> = fc
  .tuple(
    fc.array(
      fc.oneof(
        asciiText.map((s) => Buffer.from(s)),
        fc.constantFrom(...INVALID_UTF8).map((b) => Buffer.from(b)),
      ),
      {
        maxLength: 8,
      },
    ),
    fc.constantFrom(...INVALID_UTF8),
    fc.constantFrom('raw', 'json-string', 'json-key'),
  )
  .map(([parts, bad, where]) => {
    const inner = Buffer.concat([...parts, Buffer.from(bad)]);
    const hex = [...bad].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const bytes =
      where === 'raw'
        ? inner
        : where === 'json-string'
          ? Buffer.concat([Buffer.from('{"host":"'), inner, Buffer.from('","port":5432}')])
          : Buffer.concat([Buffer.from('{"'), inner, Buffer.from('":1}')]);
    return hostile('invalid-utf8', `${where}, with ${hex}`, bytes);
  });

/** C0 and C1 controls, DEL, terminal escapes, line/paragraph separators, BOM, bidi override. */
const controlText = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x7f, max: 0x9f }).map((c) => String.fromCharCode(c)),
      fc.constantFrom(
        '\x1b[2J\x1b[H',
        '\x1b]0;pwned\x07',
        '\x1b[31m',
        '\u2028',
        '\u2029',
        '\ufeff',
        '\u202e',
      ),
      asciiText,
    ),
    { minLength: 1, maxLength: 16 },
  )
  .map((parts) => parts.join(''));

/** Control characters raw, raw inside a JSON string (not JSON), escaped in a JSON string, or as a key. */
export const controlCharacters: fc.Arbitrary<Hostile> = fc
  .tuple(controlText, fc.constantFrom('raw', 'raw-in-json-string', 'escaped-in-json', 'json-key'))
  .map(([text, where]) => {
    const escaped = JSON.stringify(text);
    const value =
      where === 'raw'
        ? text
        : where === 'raw-in-json-string'
          ? `{"host":"${text}","port":1}`
          : where === 'escaped-in-json'
            ? `{"host":${escaped},"port":1}`
            : `{${escaped}:${escaped}}`;
    return hostile('control-characters', `${where}: ${escaped.slice(0, 60)}`, value);
  });

/** Numbers no double (and no uint64) holds: beyond 2^64, beyond Number.MAX_VALUE, below the smallest denormal. */
export const hugeNumbers: fc.Arbitrary<Hostile> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '18446744073709551616123', '18446744073709551616'),
      fc.bigInt({ min: 2n ** 64n, max: 2n ** 1100n }).map(String),
      fc.bigInt({ min: -(2n ** 1100n), max: -(2n ** 63n) - 1n }).map(String),
      fc.integer({ min: 309, max: 100_000 }).map((e) => `9.99e${e}`),
    ),
    fc.constantFrom('raw', 'port', 'array'),
  )
  .map(([n, where]) => {
    const value = where === 'raw' ? n : where === 'port' ? `{"host":"h","port":${n}}` : `[${n},${n}]`;
    return hostile('huge-numbers', `${where}: ${n.slice(0, 40)}${n.length > 40 ? '…' : ''}`, value);
  });

const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'toJSON',
  'then',
  '__defineGetter__',
  'isPrototypeOf',
];

/** Objects keyed by `__proto__`, `constructor`, `toJSON`… (duplicates too), nested. */
export const prototypeKeys: fc.Arbitrary<Hostile> = fc.oneof(
  fc.constant(hostile('prototype-keys', 'the issue', '{"__proto__":{"x":1},"constructor":{"prototype":1}}')),
  fc
    .array(
      fc.tuple(
        fc.constantFrom(...PROTOTYPE_KEYS),
        fc.oneof(
          fc.json({ maxDepth: 2 }),
          fc.constantFrom('{"__proto__":{"polluted":true}}', '{"prototype":{"polluted":true}}'),
        ),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((entries) => {
      const text = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
      return hostile('prototype-keys', text.slice(0, 80), text);
    }),
);

/** A byte length from 1 KiB to just under Consul's limit, often right at it. */
const bigSize = fc.oneof(
  fc.integer({ min: 1024, max: MAX_VALUE_BYTES }),
  fc.integer({ min: MAX_VALUE_BYTES - 1024, max: MAX_VALUE_BYTES }),
);

/** One JSON string (or plain text) of up to ~512 KiB, of a repeated unit (any Unicode, escapes, surrogates). */
export const longStrings: fc.Arbitrary<Hostile> = fc
  .tuple(
    fc.oneof(
      fc.string({ minLength: 1, maxLength: 6, unit: 'grapheme' }),
      fc.string({ minLength: 1, maxLength: 6, unit: 'binary' }),
      fc.constantFrom('x', '"', '\\', '\u0000', '😀', '\ud800'),
    ),
    bigSize,
    fc.boolean(),
  )
  .map(([unit, size, json]) => {
    const unitBytes = json ? Buffer.byteLength(JSON.stringify(unit)) - 2 : Buffer.byteLength(unit);
    const text = unit.repeat(Math.max(1, Math.floor((size - 2) / unitBytes)));
    return hostile(
      'long-string',
      `${json ? 'a JSON string' : 'plain text'} of ${JSON.stringify(unit)} × ${text.length / unit.length}`,
      json ? JSON.stringify(text) : text,
    );
  });

/** Values of a given size: a wide array, a wide object, or repeated random bytes. */
export const bigValues: fc.Arbitrary<Hostile> = fc
  .tuple(
    bigSize,
    fc.constantFrom('wide-array', 'wide-object', 'bytes'),
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
  )
  .map(([size, shape, unit]) => {
    if (shape === 'wide-array') {
      const n = Math.floor((size - 2) / 2);
      return hostile('big', `[1,1,…] of ${size} bytes`, `[${'1,'.repeat(n)}1]`);
    }
    if (shape === 'wide-object') {
      const entries: string[] = [];
      let length = 2;
      for (let i = 0; length + 12 < size; i += 1) {
        const entry = `"k${i}":${i}`;
        entries.push(entry);
        length += entry.length + 1;
      }
      return hostile('big', `{"k0":0,…} with ${entries.length} keys`, `{${entries.join(',')}}`);
    }
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += unit.length) bytes.set(unit.subarray(0, size - i), i);
    return hostile('big', `${size} bytes of ${Buffer.from(unit).toString('hex').slice(0, 32)}…`, bytes);
  });

/** Text that is not JSON, or barely: words, a session ID (the Go seed's contenders), JS-only literals. */
export const plainText: fc.Arbitrary<Hostile> = fc
  .oneof(
    fc.constantFrom(
      'hello world',
      'db-1:5432',
      'NaN',
      'Infinity',
      'undefined',
      '0x10',
      "{'host':'h'}",
      '{',
      ']',
    ),
    fc.constantFrom('true', 'null', '0', '"quoted"', '[]', '{}'),
    fc.uuid(),
    fc.string({ maxLength: 200, unit: 'grapheme' }),
  )
  .map((text) => hostile('plain-text', JSON.stringify(text).slice(0, 80), text));

export const emptyValues: fc.Arbitrary<Hostile> = fc
  .constantFrom('', ' ', '\n', '\t\r\n ', '\ufeff')
  .map((text) => hostile('empty', JSON.stringify(text), text));

/** Ordinary JSON, so that a run also sees keys with a plain leader among the hostile ones. */
export const ordinaryJson: fc.Arbitrary<Hostile> = fc
  .json({ maxDepth: 4 })
  .map((text) => hostile('ordinary-json', text.slice(0, 80), text));

/** Every family of issue #12, deep nesting (the one that used to crash) weighted up. */
export const hostileValue: fc.Arbitrary<Hostile> = fc.oneof(
  { arbitrary: deepNesting, weight: 5 },
  { arbitrary: invalidUtf8, weight: 2 },
  { arbitrary: controlCharacters, weight: 2 },
  { arbitrary: hugeNumbers, weight: 2 },
  { arbitrary: prototypeKeys, weight: 2 },
  { arbitrary: longStrings, weight: 1 },
  { arbitrary: bigValues, weight: 1 },
  { arbitrary: plainText, weight: 2 },
  { arbitrary: emptyValues, weight: 1 },
  { arbitrary: ordinaryJson, weight: 1 },
);
