import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { KvGetWireSchema, SessionInfoListWireSchema, Uint64Schema, parseConsulJson } from './wire.js';

const UINT64_MAX = (1n << 64n) - 1n;
/** consul lock's flag (0x2ddccbc058a50c18): a double cannot hold it. */
const CONSUL_LOCK_FLAG = 3304740253564472344n;

/** Key texts full of what could confuse a textual rewrite of the JSON: quotes, backslashes, field names. */
const trickyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .array(
      fc.constantFrom(
        '"',
        '\\',
        'Flags',
        '"Flags":1',
        '"LockIndex": 2',
        ':',
        '1',
        '18446744073709551615',
        'é',
        '😀',
        '\n',
        ' ',
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join('')),
);

/** A KV GET body as Consul 1.8 writes it: compact JSON, uint64 fields as bare numbers. */
function kvBody(entry: {
  key: string;
  flags: bigint;
  lockIndex: bigint;
  createIndex: bigint;
  modifyIndex: bigint;
}) {
  return (
    `[{"LockIndex":${entry.lockIndex},"Key":${JSON.stringify(entry.key)},"Flags":${entry.flags},` +
    `"Value":"eyJ9","Session":"abc","CreateIndex":${entry.createIndex},"ModifyIndex":${entry.modifyIndex}}]`
  );
}

describe('parseConsulJson', () => {
  it('keeps the consul lock flag exact where JSON.parse rounds it', () => {
    const text = `[{"LockIndex":1,"Key":"k","Flags":3304740253564472344,"Value":"eyJ9","Session":"abc","CreateIndex":14,"ModifyIndex":14}]`;
    // The reason the function exists: the plain parse loses the low bits.
    const plain = JSON.parse(text) as [{ Flags: number }];
    expect(BigInt(plain[0].Flags)).not.toBe(CONSUL_LOCK_FLAG);

    const parsed = KvGetWireSchema.parse(parseConsulJson(text));
    expect(parsed[0]?.Flags).toBe(CONSUL_LOCK_FLAG);
    expect(parsed[0]?.LockIndex).toBe(1n);
    expect(parsed[0]?.CreateIndex).toBe(14n);
    expect(parsed[0]?.ModifyIndex).toBe(14n);
  });

  it('keeps uint64 max exact in every index field', () => {
    const text = kvBody({
      key: 'k',
      flags: UINT64_MAX,
      lockIndex: UINT64_MAX,
      createIndex: UINT64_MAX - 1n,
      modifyIndex: UINT64_MAX,
    });
    const [entry] = KvGetWireSchema.parse(parseConsulJson(text));
    expect(entry?.Flags).toBe(UINT64_MAX);
    expect(entry?.LockIndex).toBe(UINT64_MAX);
    expect(entry?.CreateIndex).toBe(UINT64_MAX - 1n);
    expect(entry?.ModifyIndex).toBe(UINT64_MAX);
  });

  it('tolerates whitespace around the colon (pretty-printed answers)', () => {
    const text = `[\n  {\n    "Key": "k",\n    "Flags" : 3304740253564472344,\n    "LockIndex": 0,\n    "CreateIndex": 5,\n    "ModifyIndex": 6\n  }\n]`;
    const [entry] = KvGetWireSchema.parse(parseConsulJson(text));
    expect(entry?.Flags).toBe(CONSUL_LOCK_FLAG);
  });

  it('does not touch a key string that contains "Flags":1 behind escaped quotes', () => {
    const key = 'svc/"Flags":1/"LockIndex": 99999999999999999999';
    const text = kvBody({ key, flags: 7n, lockIndex: 2n, createIndex: 3n, modifyIndex: 4n });
    const parsed = parseConsulJson(text) as [{ Key: string }];
    expect(parsed[0].Key).toBe(key);
    const [entry] = KvGetWireSchema.parse(parsed);
    expect(entry?.Key).toBe(key);
    expect(entry?.Flags).toBe(7n);
  });

  it('leaves other numbers as numbers (LockDelay of a session)', () => {
    const parsed = parseConsulJson(
      '[{"LockDelay":15000000000,"CreateIndex":9,"Flags":3304740253564472344}]',
    ) as [{ LockDelay: unknown; CreateIndex: unknown; Flags: unknown }];
    expect(parsed[0].LockDelay).toBe(15000000000);
    expect(parsed[0].CreateIndex).toBe('9');
    expect(parsed[0].Flags).toBe('3304740253564472344');
  });

  it('parses once, keeping numbers, when no uint64 field is beyond 2^53', () => {
    const parsed = parseConsulJson('[{"CreateIndex":9,"Flags":0}]') as [
      { CreateIndex: unknown; Flags: unknown },
    ];
    expect(parsed[0]).toEqual({ CreateIndex: 9, Flags: 0 });
  });

  it('throws on text that is not JSON', () => {
    expect(() => parseConsulJson('Permission denied')).toThrow(SyntaxError);
    expect(() => parseConsulJson('')).toThrow(SyntaxError);
  });

  it('round-trips random entries with big flags and indexes exactly', () => {
    const uint64 = fc.bigInt({ min: 0n, max: UINT64_MAX });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: trickyText,
            flags: uint64,
            lockIndex: uint64,
            createIndex: uint64,
            modifyIndex: uint64,
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (entries) => {
          const text = `[${entries.map((e) => kvBody(e).slice(1, -1)).join(',')}]`;
          const parsed = KvGetWireSchema.parse(parseConsulJson(text));
          const got = parsed.map((w) => ({
            key: w.Key,
            flags: w.Flags,
            lockIndex: w.LockIndex,
            createIndex: w.CreateIndex,
            modifyIndex: w.ModifyIndex,
          }));
          return (
            got.length === entries.length &&
            got.every((g, i) => {
              const e = entries[i];
              return (
                e !== undefined &&
                g.key === e.key &&
                g.flags === e.flags &&
                g.lockIndex === e.lockIndex &&
                g.createIndex === e.createIndex &&
                g.modifyIndex === e.modifyIndex
              );
            })
          );
        },
      ),
    );
  });

  it('leaves string contents alone whatever they contain', () => {
    fc.assert(
      fc.property(trickyText, (s) => {
        // A big Flags forces the exact (rewriting) path.
        const text = `[${JSON.stringify({ Key: s, Session: s }).slice(0, -1)},"Flags":3304740253564472344}]`;
        const [parsed] = parseConsulJson(text) as [{ Key: string; Session: string; Flags: string }];
        expect(parsed.Key).toBe(s);
        expect(parsed.Session).toBe(s);
        expect(parsed.Flags).toBe('3304740253564472344');
      }),
    );
  });
});

describe('Uint64Schema', () => {
  it('accepts bigints, decimal strings and safe integers as bigint', () => {
    expect(Uint64Schema.parse(5n)).toBe(5n);
    expect(Uint64Schema.parse('18446744073709551615')).toBe(UINT64_MAX);
    expect(Uint64Schema.parse(42)).toBe(42n);
  });

  it('refuses negatives, non-integers, hex and unsafe numbers', () => {
    expect(Uint64Schema.safeParse(-1n).success).toBe(false);
    expect(Uint64Schema.safeParse(-1).success).toBe(false);
    expect(Uint64Schema.safeParse(1.5).success).toBe(false);
    expect(Uint64Schema.safeParse('0x10').success).toBe(false);
    expect(Uint64Schema.safeParse('-3').success).toBe(false);
    expect(Uint64Schema.safeParse('').success).toBe(false);
    // A rounded double must not be taken for the exact flag.
    expect(Uint64Schema.safeParse(Number(CONSUL_LOCK_FLAG)).success).toBe(false);
  });

  it('refuses values beyond 2^64-1', () => {
    expect(Uint64Schema.safeParse('18446744073709551616').success).toBe(false);
    expect(Uint64Schema.safeParse('99999999999999999999').success).toBe(false);
    expect(Uint64Schema.safeParse(1n << 64n).success).toBe(false);
  });
});

describe('SessionInfoListWireSchema', () => {
  it('reads a Consul 1.8 session info answer and fills defaults', () => {
    const text =
      '[{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"","Node":"node-1","Checks":null,' +
      '"NodeChecks":["serfHealth"],"ServiceChecks":null,"LockDelay":15000000000,"Behavior":"release",' +
      '"TTL":"","CreateIndex":13,"ModifyIndex":13}]';
    const [session] = SessionInfoListWireSchema.parse(parseConsulJson(text));
    expect(session?.ID).toBe('adf4238a-882b-9ddc-4a9d-5b6758e4159e');
    expect(session?.NodeChecks).toEqual(['serfHealth']);
    expect(session?.CreateIndex).toBe(13n);
    expect(session?.TTL).toBe('');
  });

  it('refuses an unknown behavior', () => {
    const body = [{ ID: 'a', Node: 'n', LockDelay: 0, Behavior: 'explode', CreateIndex: 1 }];
    expect(SessionInfoListWireSchema.safeParse(body).success).toBe(false);
  });
});
