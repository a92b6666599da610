import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { z } from 'zod';
import * as zm from 'zod/mini';
import type { StandardSchemaV1 } from './standard-schema.js';
import { InvalidDescriptorError } from '../errors.js';
import { type DecodeResult, decodeDescriptor } from './decode.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const descriptor = z.object({ host: z.string(), port: z.number().int() });

function refusedOf<T>(result: DecodeResult<T>) {
  if (result.ok) throw new Error('expected the value to be refused');
  return result;
}

describe('decodeDescriptor', () => {
  it('decodes JSON and checks it with the schema (json is the default mode)', () => {
    const result = decodeDescriptor(b64('{"host":"10.0.0.7","port":8080}'), 'json', descriptor);
    expect(result).toEqual({ ok: true, node: { host: '10.0.0.7', port: 8080 } });
  });

  it('returns what the schema outputs (transforms and stripping apply)', () => {
    const schema = z.object({ port: z.string().transform(Number) });
    expect(decodeDescriptor(b64('{"port":"80","extra":true}'), 'json', schema)).toEqual({
      ok: true,
      node: { port: 80 },
    });
  });

  it.each([
    ['an absent value', null],
    ['an empty value', ''],
    ['a whitespace value', b64(' \n ')],
  ])('decodes %s to null in json mode, accepted by z.null() and nullable schemas', (_what, value) => {
    expect(decodeDescriptor(value, 'json', z.null())).toEqual({ ok: true, node: null });
    expect(decodeDescriptor(value, 'json', descriptor.nullable())).toEqual({ ok: true, node: null });
  });

  it('refuses an empty value for an object schema with INVALID_DESCRIPTOR', () => {
    const result = refusedOf(decodeDescriptor(null, 'json', descriptor));
    expect(result.error).toBeInstanceOf(InvalidDescriptorError);
    expect(result.error.code).toBe('INVALID_DESCRIPTOR');
    expect(result.error.issues.length).toBeGreaterThan(0);
    expect(result.raw).toBe('');
  });

  it('refuses invalid JSON with a decode issue at path []', () => {
    const result = refusedOf(decodeDescriptor(b64('{"host": '), 'json', descriptor));
    expect(result.error.code).toBe('INVALID_DESCRIPTOR');
    expect(result.error.issues).toHaveLength(1);
    expect(result.error.issues[0]).toMatchObject({ code: 'decode', path: [] });
    expect(result.error.message).toMatch(/cannot be decoded/);
    expect(result.error.cause).toBeInstanceOf(SyntaxError);
    expect(result.raw).toBe('{"host": ');
  });

  it('refuses invalid UTF-8 in json and text modes, with the raw text still shown', () => {
    const bytes = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('base64');
    for (const mode of ['json', 'text'] as const) {
      const result = refusedOf(decodeDescriptor(bytes, mode, z.unknown()));
      expect(result.error.issues[0]?.code).toBe('decode');
      expect(result.raw).toBe('{"\uFFFD\uFFFD"}');
    }
  });

  it.each([
    ['json', '!!!'],
    ['text', 'eyJ9 '],
    ['json', 'eyJ'],
    ['text', 'ab=c'],
  ] as const)(
    'refuses a value that is not base64 (%s mode, %j) instead of skipping characters',
    (mode, value) => {
      const result = refusedOf(decodeDescriptor(value, mode, z.unknown()));
      expect(result.error.code).toBe('INVALID_DESCRIPTOR');
      expect(result.error.issues).toEqual([{ code: 'decode', message: 'value is not base64', path: [] }]);
      expect(result.raw).toBe(value);
    },
  );

  it('refuses a value when the schema throws instead of reporting an issue', () => {
    const schema = z.unknown().refine(() => {
      throw new Error('refinement crashed');
    });
    const result = refusedOf(decodeDescriptor(b64('{}'), 'json', schema));
    expect(result.error.code).toBe('INVALID_DESCRIPTOR');
    expect(result.error.issues[0]?.code).toBe('decode');
    expect(result.error.issues[0]?.message).toContain('refinement crashed');
    expect(result.raw).toBe('{}');
  });

  it('gives the UTF-8 text as a string in text mode', () => {
    expect(decodeDescriptor(b64('10.0.0.7:8080'), 'text', z.string())).toEqual({
      ok: true,
      node: '10.0.0.7:8080',
    });
    expect(decodeDescriptor(b64('{"not":"parsed"}'), 'text', z.string())).toEqual({
      ok: true,
      node: '{"not":"parsed"}',
    });
    expect(decodeDescriptor(null, 'text', z.string())).toEqual({ ok: true, node: '' });
    expect(decodeDescriptor(b64('ünïcødé ✓'), 'text', z.string())).toEqual({ ok: true, node: 'ünïcødé ✓' });
  });

  it('passes the raw bytes to a decoder function', () => {
    let seen: Uint8Array | undefined;
    const result = decodeDescriptor(
      Buffer.from([1, 2, 255]).toString('base64'),
      (bytes) => {
        seen = bytes;
        return bytes.length;
      },
      z.number(),
    );
    expect(result).toEqual({ ok: true, node: 3 });
    expect(Array.from(seen ?? [])).toEqual([1, 2, 255]);
  });

  it('refuses when a decoder function throws, keeping the cause', () => {
    const boom = new Error('not a protobuf');
    const result = refusedOf(
      decodeDescriptor(
        b64('hello'),
        () => {
          throw boom;
        },
        z.unknown(),
      ),
    );
    expect(result.error.issues).toEqual([{ code: 'decode', message: 'not a protobuf', path: [] }]);
    expect(result.error.cause).toBe(boom);
    expect(result.raw).toBe('hello');
  });

  it('refuses when a decoder function throws a non-Error', () => {
    const result = refusedOf(
      decodeDescriptor(
        b64('x'),
        () => {
          throw 'nope';
        },
        z.unknown(),
      ),
    );
    expect(result.error.issues[0]?.message).toBe('nope');
  });

  it('reports schema mismatches with zod paths', () => {
    const schema = z.object({ host: z.string(), ports: z.array(z.number()) });
    const result = refusedOf(decodeDescriptor(b64('{"host":"h","ports":[80,"443"]}'), 'json', schema));
    expect(result.error.code).toBe('INVALID_DESCRIPTOR');
    expect(result.error.issues).toHaveLength(1);
    expect(result.error.issues[0]).toMatchObject({ code: 'invalid_type', path: ['ports', 1] });
    expect(result.error.message).toContain('at ports.1');
    expect(result.raw).toBe('{"host":"h","ports":[80,"443"]}');
  });

  it('reports every failing field', () => {
    const result = refusedOf(decodeDescriptor(b64('{"host":1,"port":"x"}'), 'json', descriptor));
    expect(result.error.issues.map((i) => i.path)).toEqual([['host'], ['port']]);
  });

  it('truncates the raw text to 4096 characters plus an ellipsis', () => {
    const big = JSON.stringify({ host: 1, pad: 'x'.repeat(10_000) });
    const result = refusedOf(decodeDescriptor(b64(big), 'json', descriptor));
    expect(result.raw).toBe(`${big.slice(0, 4096)}…`);
  });

  it('does not truncate a value of exactly 4096 bytes', () => {
    const text = `"${'y'.repeat(4094)}"`;
    const result = refusedOf(decodeDescriptor(b64(text), 'json', z.number()));
    expect(result.raw).toBe(text);
  });

  it('decodes a ~500 KB JSON value', () => {
    const items = Array.from({ length: 5_000 }, (_, i) => ({
      id: i,
      name: `node-${i}`,
      pad: 'z'.repeat(80),
    }));
    const text = JSON.stringify({ items });
    expect(text.length).toBeGreaterThan(450_000);
    const schema = z.object({
      items: z.array(z.object({ id: z.number(), name: z.string(), pad: z.string() })),
    });
    const result = decodeDescriptor(b64(text), 'json', schema);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.node.items).toHaveLength(5_000);
      expect(result.node.items[4_999]?.name).toBe('node-4999');
    }
  });

  it("suggests decode: 'text' when a value that is not JSON looks like plain text (a session ID, a word)", () => {
    for (const text of ['adf4238a-882b-9ddc-4a9d-5b6758e4159e', 'leader']) {
      const result = refusedOf(decodeDescriptor(b64(text), 'json', z.unknown()));
      expect(result.error.message).toContain("decode: 'text'");
      expect(result.raw).toBe(text);
    }
    const broken = refusedOf(decodeDescriptor(b64('{"a":'), 'json', z.unknown()));
    expect(broken.error.message).not.toContain("decode: 'text'");
  });
});

describe('decodeDescriptor with asynchronous user code', () => {
  // Any rejection left unhandled would end a process with Node's default settings.
  const unhandled: unknown[] = [];
  const record = (reason: unknown): void => void unhandled.push(reason);
  beforeAll(() => void process.on('unhandledRejection', record));
  afterAll(() => void process.off('unhandledRejection', record));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

  it('refuses a decode function that returns a Promise, and handles its rejection', async () => {
    const decode = async (bytes: Uint8Array): Promise<unknown> => {
      await Promise.resolve();
      throw new Error(`refused ${bytes.length} bytes`);
    };
    const result = refusedOf(decodeDescriptor(b64('{}'), decode, z.unknown()));
    expect(result.error.code).toBe('INVALID_DESCRIPTOR');
    expect(result.error.message).toContain('decode returned a Promise: decoding must be synchronous');
    expect(result.error.issues[0]).toMatchObject({ code: 'decode', path: [] });
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('refuses a decode function that returns a resolving thenable', async () => {
    const thenable = { then: (resolve: (v: unknown) => void) => resolve({ host: 'h' }) };
    const result = refusedOf(decodeDescriptor(b64('{}'), () => thenable, z.unknown()));
    expect(result.error.message).toContain('decode returned a Promise');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it.each([
    ['an async refinement', z.object({ a: z.number() }).refine(async () => true)],
    [
      'an async refinement that rejects',
      z.object({ a: z.number() }).refine(async () => Promise.reject(new Error('no'))),
    ],
    ['an async transform', z.object({ a: z.number() }).transform(async (v) => v.a)],
    [
      'an async transform that rejects',
      z.object({ a: z.number() }).transform(async () => {
        throw new Error('boom');
      }),
    ],
  ])('refuses a schema with %s: "the schema is async", and no unhandled rejection', async (_what, schema) => {
    for (let i = 0; i < 3; i += 1) {
      const result = refusedOf(decodeDescriptor(b64('{"a":1}'), 'json', schema as z.ZodType<unknown>));
      expect(result.error.code).toBe('INVALID_DESCRIPTOR');
      expect(result.error.message).toContain('the schema is async');
      expect(result.error.message).not.toContain('schema threw');
    }
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('still reports a synchronous schema that throws as "schema threw"', () => {
    const schema = z.unknown().superRefine(() => {
      throw new Error('refinement bug');
    });
    const result = refusedOf(decodeDescriptor(b64('1'), 'json', schema));
    expect(result.error.message).toContain('schema threw: refinement bug');
  });
});

describe('decodeDescriptor with any Standard Schema validator', () => {
  it('takes a zod/mini schema (no zod classic methods needed)', () => {
    const schema = zm.object({ host: zm.string() });
    expect(decodeDescriptor(b64('{"host":"db-1"}'), 'json', schema)).toEqual({
      ok: true,
      node: { host: 'db-1' },
    });
    const result = refusedOf(decodeDescriptor(b64('{"host":1}'), 'json', schema));
    expect(result.error.issues[0]).toMatchObject({ code: 'invalid_type', path: ['host'] });
  });

  it('takes any object implementing ~standard.validate, its path segments flattened', () => {
    const schema: StandardSchemaV1<unknown, string> = {
      '~standard': {
        version: 1,
        vendor: 'hand-made',
        validate: (value) =>
          typeof value === 'string'
            ? { value: value.toUpperCase() }
            : { issues: [{ message: 'not a string', path: [{ key: 'node' }, 0] }] },
      },
    };
    expect(decodeDescriptor(b64('"db"'), 'json', schema)).toEqual({ ok: true, node: 'DB' });
    const result = refusedOf(decodeDescriptor(b64('1'), 'json', schema));
    expect(result.error.issues).toEqual([{ code: 'invalid', message: 'not a string', path: ['node', 0] }]);
    expect(result.error.message).toBe('value does not match the descriptor schema at node.0: not a string');
  });

  it('refuses a Standard Schema whose validate returns a Promise: "the schema is async"', () => {
    const schema: StandardSchemaV1<unknown, unknown> = {
      '~standard': { version: 1, vendor: 'async', validate: (value) => Promise.resolve({ value }) },
    };
    expect(refusedOf(decodeDescriptor(b64('1'), 'json', schema)).error.message).toContain(
      'the schema is async',
    );
  });
});
