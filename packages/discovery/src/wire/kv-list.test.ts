import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidResponseError, LeaderDiscoveryError } from '../errors.js';
import { type KvEntry, readKvList } from './kv.js';
import { KvListReader, commonPrefixLength, commonSuffixLength } from './kv-list.js';
import type { ConsulResponse } from './transport.js';

const PREFIX = 'svc/';

/** The oracle: the whole answer parsed, by key (404: no keys). */
function fullParse(
  res: ConsulResponse,
  previous?: ReadonlyMap<string, KvEntry>,
): ReadonlyMap<string, KvEntry> {
  if (res.status === 404) return new Map();
  return new Map(readKvList(res, PREFIX, previous).map((entry) => [entry.key, entry]));
}
const UINT64_MAX = (1n << 64n) - 1n;

/** An entry as Consul stores it; undefined fields are left out of the JSON. */
interface Wire {
  readonly key: string;
  readonly value: string | null | undefined;
  readonly session: string | undefined;
  readonly flags: bigint;
  readonly lockIndex: bigint;
  readonly createIndex: bigint;
  readonly modifyIndex: bigint;
  /** A rotation of the fields: correctness must not depend on Consul's order. */
  readonly order: number;
}

interface Style {
  /** `?pretty`-like whitespace between and inside entries. */
  readonly pretty: boolean;
  /** Non-ASCII in keys written as \uXXXX escapes. */
  readonly asciiOnly: boolean;
}

const COMPACT: Style = { pretty: false, asciiOnly: false };

function jsonString(text: string, style: Style): string {
  const json = JSON.stringify(text);
  return style.asciiOnly
    ? json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : json;
}

function wireJson(entry: Wire, style: Style): string {
  const fields: string[] = [
    `"LockIndex":${entry.lockIndex}`,
    `"Key":${jsonString(entry.key, style)}`,
    `"Flags":${entry.flags}`,
    ...(entry.value === undefined
      ? []
      : [`"Value":${entry.value === null ? 'null' : JSON.stringify(entry.value)}`]),
    ...(entry.session === undefined ? [] : [`"Session":${JSON.stringify(entry.session)}`]),
    `"CreateIndex":${entry.createIndex}`,
    `"ModifyIndex":${entry.modifyIndex}`,
  ];
  const shift = entry.order % fields.length;
  const ordered = [...fields.slice(shift), ...fields.slice(0, shift)];
  return style.pretty
    ? `{\n        ${ordered.join(',\n        ').replace(/:/, ': ')}\n    }`
    : `{${ordered.join(',')}}`;
}

/** A body as Consul writes it: sorted by key, a newline after the array. */
function bodyOf(entries: readonly Wire[], style: Style = COMPACT): string {
  const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const items = sorted.map((e) => wireJson(e, style));
  if (style.pretty) return items.length === 0 ? '[]\n' : `[\n    ${items.join(',\n    ')}\n]\n`;
  return `[${items.join(',')}]\n`;
}

function res(status: number, body: string | Buffer): ConsulResponse {
  return {
    status,
    headers: { 'x-consul-index': '7' },
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  };
}

function wire(key: string, modifyIndex: number, more: Partial<Wire> = {}): Wire {
  return {
    key,
    value: 'eyJob3N0IjoiYSJ9',
    session: 's-1',
    flags: 0n,
    lockIndex: 1n,
    createIndex: 1n,
    modifyIndex: BigInt(modifyIndex),
    order: 0,
    ...more,
  };
}

type Outcome =
  | { readonly ok: true; readonly map: ReadonlyMap<string, KvEntry> }
  | { readonly ok: false; readonly error: unknown };

function attempt(fn: () => ReadonlyMap<string, KvEntry>): Outcome {
  try {
    return { ok: true, map: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Follows answers with a reader and with the full parse side by side, and
 * checks each answer reads the same: same entries in the same order, the same
 * errors, and an entry object reused exactly when the full parse reuses it.
 */
class Twin {
  readonly reader = new KvListReader(PREFIX);
  private full: ReadonlyMap<string, KvEntry> | undefined;
  private read: ReadonlyMap<string, KvEntry> | undefined;
  readonly paths: string[] = [];

  answer(response: ConsulResponse): ReadonlyMap<string, KvEntry> | undefined {
    const expected = attempt(() => fullParse(response, this.full));
    const actual = attempt(() => this.reader.read(response));
    if (!expected.ok) {
      expect(actual.ok).toBe(false);
      if (actual.ok) return undefined;
      expect(actual.error).toBeInstanceOf(LeaderDiscoveryError);
      expect((actual.error as Error).constructor).toBe((expected.error as Error).constructor);
      expect((actual.error as Error).message).toBe((expected.error as Error).message);
      return undefined;
    }
    expect(actual.ok).toBe(true);
    if (!actual.ok) return undefined;
    this.paths.push(this.reader.lastPath ?? '');
    const got = actual.map;
    const want = expected.map;
    expect(got.size).toBe(want.size);
    expect([...got.entries()]).toEqual([...want.entries()]);
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [key, entry] of want) {
      expect(got.get(key)).toEqual(entry);
      expect(got.has(key)).toBe(true);
      const reusedByFull = this.full !== undefined && this.full.get(key) === entry;
      const reusedByReader = this.read !== undefined && this.read.get(key) === got.get(key);
      expect(reusedByReader).toBe(reusedByFull);
    }
    this.full = want;
    this.read = got;
    return got;
  }
}

// Keys with the characters a scanner could trip on, escaped or not.
const awkwardKey = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '}',
        '{',
        ',',
        '"',
        '\\',
        '[',
        ']',
        ':',
        '/',
        ' ',
        'é',
        '😀',
        '\u2028',
        '\n',
        '\\"',
        '"}',
      ),
      fc.string({ unit: 'grapheme', maxLength: 4 }),
      fc.string({ unit: 'binary', maxLength: 3 }),
    ),
    { maxLength: 6 },
  )
  .map((parts) => PREFIX + parts.join(''));

const uint64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 1n << 53n, max: UINT64_MAX }),
  fc.constant(UINT64_MAX),
);

const value = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('base64')) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined) },
);

const session = fc.oneof(fc.uuid(), fc.constantFrom('', undefined));

const wireEntry = (key: fc.Arbitrary<string>): fc.Arbitrary<Wire> =>
  fc.record({
    key,
    value,
    session,
    flags: uint64,
    lockIndex: uint64,
    createIndex: uint64,
    modifyIndex: uint64,
    order: fc.constantFrom(0, 0, 0, 1, 3, 5),
  });

type Step =
  | { readonly kind: 'change'; readonly at: number; readonly entry: Wire }
  | { readonly kind: 'add'; readonly entry: Wire }
  | { readonly kind: 'remove'; readonly at: number }
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'corrupt'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'style'; readonly style: Style };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('change' as const),
      at: fc.nat(),
      entry: wireEntry(awkwardKey),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), entry: wireEntry(awkwardKey) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom(404, 500, 403) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('corrupt' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('style' as const),
      style: fc.record({ pretty: fc.boolean(), asciiOnly: fc.boolean() }),
    }),
  },
);

/** Entries with unique keys (Consul's keys are unique). */
function withEntry(entries: readonly Wire[], entry: Wire): Wire[] {
  return [...entries.filter((e) => e.key !== entry.key), entry];
}

describe('KvListReader', () => {
  it('reads any sequence of answers exactly as a full parse does, reusing unchanged entries', () => {
    let incremental = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(wireEntry(awkwardKey), { selector: (e) => e.key, maxLength: 12 }),
        fc.array(step, { minLength: 1, maxLength: 12 }),
        (initial, steps) => {
          const twin = new Twin();
          let entries: Wire[] = initial;
          let style = COMPACT;
          twin.answer(res(200, bodyOf(entries, style)));
          for (const s of steps) {
            const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
            switch (s.kind) {
              case 'change': {
                const target = sorted[s.at % Math.max(sorted.length, 1)];
                // Changes the fields of an existing key (or adds one to an empty list).
                entries = withEntry(entries, target ? { ...s.entry, key: target.key } : s.entry);
                twin.answer(res(200, bodyOf(entries, style)));
                break;
              }
              case 'add':
                entries = withEntry(entries, s.entry);
                twin.answer(res(200, bodyOf(entries, style)));
                break;
              case 'remove': {
                const target = sorted[s.at % Math.max(sorted.length, 1)];
                entries = entries.filter((e) => e !== target);
                twin.answer(res(200, bodyOf(entries, style)));
                break;
              }
              case 'status':
                twin.answer(res(s.status, s.status === 404 ? '' : 'rpc error'));
                break;
              case 'corrupt': {
                // Any bytes anywhere: read as the full parse reads them (mostly INVALID_RESPONSE).
                const body = Buffer.from(bodyOf(entries, style));
                const at = s.at % body.length;
                body.set(s.bytes.subarray(0, body.length - at), at);
                twin.answer(res(200, body));
                break;
              }
              case 'style':
                style = s.style;
                twin.answer(res(200, bodyOf(entries, style)));
                break;
            }
          }
          incremental += twin.paths.filter((p) => p === 'incremental').length;
        },
      ),
      { numRuns: 300 },
    );
    // The property is about the incremental path: make sure it ran.
    expect(incremental).toBeGreaterThan(100);
  });

  it('reads long sequences of one-entry changes over many keys incrementally', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(199), wireEntry(fc.constant(''))), { minLength: 1, maxLength: 20 }),
        (changes) => {
          const twin = new Twin();
          let entries = Array.from({ length: 200 }, (_, i) =>
            wire(`${PREFIX}s${String(i).padStart(3, '0')}/leader`, i + 1),
          );
          twin.answer(res(200, bodyOf(entries)));
          for (const [at, change] of changes) {
            entries = entries.map((e, i) => (i === at ? { ...change, key: e.key } : e));
            twin.answer(res(200, bodyOf(entries)));
          }
          expect(twin.paths.slice(1).every((p) => p === 'incremental' || p === 'same')).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('reuses a seed’s entries on its first answer, for the keys not written since', () => {
    const seedReader = new KvListReader(PREFIX);
    const entries = [wire('svc/a/leader', 1), wire('svc/b/leader', 2)];
    const seed = seedReader.read(res(200, bodyOf(entries)));
    const reader = new KvListReader(PREFIX, seed);
    const first = reader.read(res(200, bodyOf([entries[0] as Wire, wire('svc/b/leader', 3)])));
    expect(first.get('svc/a/leader')).toBe(seed.get('svc/a/leader'));
    expect(first.get('svc/b/leader')).not.toBe(seed.get('svc/b/leader'));
    expect(first.get('svc/b/leader')?.modifyIndex).toBe(3n);
  });

  describe('targeted cases', () => {
    const keys = ['svc/a/leader', 'svc/b/leader', 'svc/c/leader', 'svc/d/leader', 'svc/e/leader'];
    const base = keys.map((key, i) => wire(key, 10 + i));
    const changed = (at: readonly number[], more: Partial<Wire> = {}): Wire[] =>
      base.map((e, i) => (at.includes(i) ? { ...e, modifyIndex: e.modifyIndex + 100n, ...more } : e));

    /** Reads `base` then `next`; returns the twin after checking the second read was incremental. */
    function follow(next: string, path = 'incremental'): Twin {
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      twin.answer(res(200, next));
      expect(twin.reader.lastPath).toBe(path);
      return twin;
    }

    it.each([
      ['the first entry', [0]],
      ['the last entry', [4]],
      ['two adjacent entries', [1, 2]],
      ['the first and the last entries', [0, 4]],
      ['every entry', [0, 1, 2, 3, 4]],
    ])('a change in %s', (_what, at) => {
      const twin = new Twin();
      const first = twin.answer(res(200, bodyOf(base)));
      const second = twin.answer(res(200, bodyOf(changed(at))));
      expect(twin.reader.lastPath).toBe('incremental');
      for (const [i, key] of keys.entries()) {
        if (at.includes(i)) {
          expect(second?.get(key)).not.toBe(first?.get(key));
          expect(second?.get(key)?.modifyIndex).toBe(BigInt(110 + i));
        } else {
          expect(second?.get(key)).toBe(first?.get(key));
        }
      }
    });

    it('a value that grows or shrinks shifts the tail', () => {
      const twin = follow(bodyOf(changed([1], { value: 'x'.repeat(300) })));
      twin.answer(res(200, bodyOf(changed([1], { value: '' }))));
      expect(twin.reader.lastPath).toBe('incremental');
      twin.answer(res(200, bodyOf(changed([1], { value: null }))));
      twin.answer(res(200, bodyOf(changed([1], { value: undefined, session: undefined }))));
      expect(twin.reader.lastPath).toBe('incremental');
    });

    it('keys added and removed at the start, middle and end', () => {
      const twin = follow(bodyOf([...base, wire('svc/f/leader', 99)]));
      twin.answer(res(200, bodyOf([wire('svc/0/leader', 98), ...base, wire('svc/f/leader', 99)])));
      twin.answer(res(200, bodyOf([wire('svc/0/leader', 98), ...base.slice(0, 2), ...base.slice(3)])));
      twin.answer(res(200, bodyOf(base.slice(1, 4))));
      twin.answer(res(200, bodyOf(base.slice(2, 3))));
      expect(twin.reader.lastPath).toBe('incremental');
    });

    it('an empty list, then keys, then an empty list again', () => {
      const twin = new Twin();
      expect(twin.answer(res(200, '[]\n'))?.size).toBe(0);
      expect(twin.answer(res(200, bodyOf(base)))?.size).toBe(5);
      expect(twin.reader.lastPath).toBe('incremental');
      expect(twin.answer(res(200, '[]\n'))?.size).toBe(0);
      expect(twin.reader.lastPath).toBe('incremental');
      expect(twin.answer(res(200, bodyOf(base.slice(2))))?.size).toBe(3);
    });

    it('a 404 in between is no keys and starts over', () => {
      const twin = new Twin();
      const first = twin.answer(res(200, bodyOf(base)));
      expect(twin.answer(res(404, ''))?.size).toBe(0);
      const again = twin.answer(res(200, bodyOf(base)));
      expect(twin.reader.lastPath).toBe('full');
      expect(again?.get(keys[0] as string)).not.toBe(first?.get(keys[0] as string));
      twin.answer(res(200, bodyOf(changed([2]))));
      expect(twin.reader.lastPath).toBe('incremental');
    });

    it('a corrupted middle is INVALID_RESPONSE, and the next good answer is read against the last good one', () => {
      const twin = new Twin();
      const first = twin.answer(res(200, bodyOf(base)));
      const broken = bodyOf(changed([2])).replace('"Key":"svc/c/leader"', '"Key":"svc/c/leader');
      let error: unknown;
      try {
        twin.reader.read(res(200, broken));
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InvalidResponseError);
      expect((error as InvalidResponseError).code).toBe('INVALID_RESPONSE');
      twin.answer(res(200, broken));
      const next = twin.answer(res(200, bodyOf(changed([3]))));
      expect(twin.reader.lastPath).toBe('incremental');
      expect(next?.get('svc/c/leader')).toBe(first?.get('svc/c/leader'));
      expect(next?.get('svc/d/leader')?.modifyIndex).toBe(113n);
    });

    it('an entry of the wrong shape in the middle is INVALID_RESPONSE saying what is wrong', () => {
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      const body = bodyOf(base).replace('"ModifyIndex":12', '"ModifyIndex":"twelve"');
      expect(() => twin.reader.read(res(200, body))).toThrow(/not a list of KV entries/);
      expect(() => twin.reader.read(res(200, body))).toThrow(InvalidResponseError);
      twin.answer(res(200, body));
      twin.answer(res(200, bodyOf(changed([2]))));
      expect(twin.reader.lastPath).toBe('incremental');
    });

    it('a key outside the prefix in the middle is INVALID_RESPONSE', () => {
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      const body = bodyOf([
        ...base.slice(0, 2),
        wire('svc/c/leader', 1, { key: 'other/c' }),
        ...base.slice(3),
      ]);
      expect(() => twin.reader.read(res(200, body))).toThrow(/outside the prefix/);
      twin.answer(res(200, body));
    });

    it('a key that looks like entries inside its string', () => {
      const trap = 'svc/c"},{"Key":"svc/z","Flags":0}],[{\\';
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      twin.answer(res(200, bodyOf([...base, wire(trap, 50)])));
      expect(twin.reader.lastPath).toBe('incremental');
      const read = twin.answer(res(200, bodyOf([...base, wire(trap, 51)])));
      expect(read?.get(trap)?.modifyIndex).toBe(51n);
      twin.answer(
        res(200, bodyOf([...base, wire(trap, 51, { value: 'eyJ9' })], { pretty: true, asciiOnly: true })),
      );
    });

    it('keeps uint64 beyond 2^53 exact in a changed entry', () => {
      const twin = follow(bodyOf(changed([2], { flags: 0x2ddccbc058a50c18n, lockIndex: UINT64_MAX })));
      const read = twin.reader.read(
        res(200, bodyOf(changed([2], { flags: 0x2ddccbc058a50c18n, lockIndex: UINT64_MAX - 1n }))),
      );
      expect(read.get('svc/c/leader')?.flags).toBe(0x2ddccbc058a50c18n);
      expect(read.get('svc/c/leader')?.lockIndex).toBe(UINT64_MAX - 1n);
    });

    it('a repeat of the last answer reads the same objects', () => {
      const twin = new Twin();
      const first = twin.answer(res(200, bodyOf(base)));
      const again = twin.answer(res(200, Buffer.from(bodyOf(base))));
      expect(twin.reader.lastPath).toBe('same');
      for (const key of keys) expect(again?.get(key)).toBe(first?.get(key));
    });

    it('errors and other statuses leave the reader as it was', () => {
      const twin = new Twin();
      const first = twin.answer(res(200, bodyOf(base)));
      twin.answer(res(500, 'rpc error: No cluster leader'));
      twin.answer(res(403, 'Permission denied'));
      twin.answer(res(200, 'not json'));
      twin.answer(res(200, ''));
      const next = twin.answer(res(200, bodyOf(changed([4]))));
      expect(twin.reader.lastPath).toBe('incremental');
      expect(next?.get('svc/a/leader')).toBe(first?.get('svc/a/leader'));
    });

    it('duplicate keys (never from Consul) read as the full parse reads them', () => {
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      const dup = `[${[...base, wire('svc/b/leader', 77)].map((e) => wireJson(e, COMPACT)).join(',')}]\n`;
      twin.answer(res(200, dup));
      twin.answer(res(200, dup.replace('"ModifyIndex":77', '"ModifyIndex":78')));
      twin.answer(res(200, bodyOf(base)));
    });

    it.each([
      [
        'a comma missing between entries',
        (body: string) => body.replace('},{"LockIndex":1,"Key":"svc/c', '} {"LockIndex":1,"Key":"svc/c'),
      ],
      [
        'a comma doubled',
        (body: string) => body.replace('},{"LockIndex":1,"Key":"svc/c', '},,{"LockIndex":1,"Key":"svc/c'),
      ],
      ['a comma before the first entry', (body: string) => body.replace('[{', '[,{')],
      ['a comma after the last entry', (body: string) => body.replace('}]', '},]')],
      [
        'an entry removed with its comma left',
        (body: string) => body.replace(/,\{[^{}]*"svc\/e\/leader"[^{}]*\}/, ','),
      ],
      [
        'a value that is not an object',
        (body: string) => body.replace(/\{[^{}]*"svc\/c\/leader"[^{}]*\}/, '7'),
      ],
      ['an entry cut short', (body: string) => body.replace(/"ModifyIndex":12\}/, '"ModifyIndex":12')],
      ['the array left open', (body: string) => body.replace(']\n', '\n')],
    ])('%s is INVALID_RESPONSE, as the full parse says', (_what, corrupt) => {
      const twin = new Twin();
      twin.answer(res(200, bodyOf(base)));
      const body = corrupt(bodyOf(base));
      expect(body).not.toBe(bodyOf(base));
      expect(() => twin.reader.read(res(200, body))).toThrow(InvalidResponseError);
      twin.answer(res(200, body));
      twin.answer(res(200, bodyOf(changed([2]))));
      expect(twin.reader.lastPath).toBe('incremental');
    });

    it('bodies that do not start with [ are read in full', () => {
      const twin = new Twin();
      twin.answer(res(200, ` ${bodyOf(base)}`));
      twin.answer(res(200, ` ${bodyOf(changed([1]))}`));
      expect(twin.reader.lastPath).toBe('full');
    });

    it('is a ReadonlyMap in Consul order', () => {
      const reader = new KvListReader(PREFIX);
      reader.read(res(200, bodyOf(base)));
      const map = reader.read(res(200, bodyOf(changed([1]))));
      expect([...map.keys()]).toEqual(keys);
      expect([...map.values()].map((e) => e.key)).toEqual(keys);
      expect([...map].map(([k]) => k)).toEqual(keys);
      const seen: string[] = [];
      map.forEach((entry, key, self) => {
        expect(entry.key).toBe(key);
        expect(self).toBe(map);
        seen.push(key);
      });
      expect(seen).toEqual(keys);
      expect(map.has('svc/zz')).toBe(false);
      expect(map.get('svc/zz')).toBeUndefined();
      expect(Object.prototype.toString.call(map)).toBe('[object KeyedList]');
    });
  });
});

describe('common prefix and suffix', () => {
  it('match a byte-by-byte count', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        (a, b, shared) => {
          const x = Buffer.concat([shared, a, shared]);
          const y = Buffer.concat([shared, b, shared]);
          let p = 0;
          while (p < x.length && p < y.length && x[p] === y[p]) p++;
          expect(commonPrefixLength(x, y)).toBe(p);
          const max = Math.min(x.length, y.length) - p;
          let s = 0;
          while (s < max && x[x.length - 1 - s] === y[y.length - 1 - s]) s++;
          expect(commonSuffixLength(x, y, max)).toBe(s);
        },
      ),
    );
  });
});
