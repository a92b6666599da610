/**
 * Property-based fuzzing of the pure parts: whatever bytes, answers or options
 * arrive, they end in a value or in one of the SDK's typed errors, never in a
 * crash or an untyped exception.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseCallOptions, parseDiscoveryOptions } from './config/options.js';
import { readEnvConfig } from './config/env.js';
import { LeaderDiscoveryError } from './errors.js';
import { decodeDescriptor } from './state/decode.js';
import { readKvResponse } from './wire/kv.js';
import { readSessionResponse } from './wire/session.js';
import type { ConsulResponse } from './wire/transport.js';
import { nextIndex } from './watch/index-rules.js';

const Node = z.object({ host: z.string(), port: z.number().int() });

/** Runs `fn`; passes when it returns or throws one of the SDK's typed errors. */
function typedOrValue(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(LeaderDiscoveryError);
  }
}

const response = (status: number, body: Buffer): ConsulResponse => ({
  status,
  headers: { 'x-consul-index': '7' },
  body,
});

describe('decodeDescriptor', () => {
  it('turns any bytes into a descriptor or an INVALID_DESCRIPTOR, in every mode', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.constantFrom('json', 'text') as fc.Arbitrary<'json' | 'text'>,
        (bytes, mode) => {
          const result = decodeDescriptor(Buffer.from(bytes).toString('base64'), mode, Node);
          if (!result.ok) {
            expect(result.error.code).toBe('INVALID_DESCRIPTOR');
            expect(result.error.issues.length).toBeGreaterThan(0);
          } else {
            expect(Node.safeParse(result.node).success).toBe(true);
          }
        },
      ),
    );
  });

  it('refuses any string that is not base64 instead of decoding part of it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (text) => {
        const result = decodeDescriptor(text, (bytes) => bytes, z.instanceof(Uint8Array));
        const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text);
        expect(result.ok).toBe(base64);
        if (!result.ok) expect(result.error.issues[0]?.message).toBe('value is not base64');
      }),
    );
  });

  it('round-trips any JSON descriptor the schema accepts', () => {
    fc.assert(
      fc.property(fc.record({ host: fc.string(), port: fc.integer() }), (node) => {
        const result = decodeDescriptor(Buffer.from(JSON.stringify(node)).toString('base64'), 'json', Node);
        expect(result).toEqual({ ok: true, node });
      }),
    );
  });
});

describe('Consul answers', () => {
  it('a KV answer of any bytes and status is an entry, "missing", or a typed error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(200, 404, 403, 429, 500, 503, 302),
        fc.uint8Array({ maxLength: 256 }),
        (status, bytes) => {
          typedOrValue(() => readKvResponse(response(status, Buffer.from(bytes)), 'k'));
        },
      ),
    );
  });

  it('a KV answer of any JSON is an entry or a typed error', () => {
    fc.assert(
      fc.property(fc.json(), (json) => {
        typedOrValue(() => readKvResponse(response(200, Buffer.from(json)), 'k'));
      }),
    );
  });

  it('a session answer of any JSON is a session, null, or a typed error', () => {
    fc.assert(
      fc.property(fc.json(), (json) => {
        typedOrValue(() => readSessionResponse(response(200, Buffer.from(json)), 'id'));
      }),
    );
  });
});

describe('options', () => {
  it('any options object is accepted or refused with INVALID_OPTION', () => {
    fc.assert(
      fc.property(fc.object(), (options) => {
        typedOrValue(() => parseDiscoveryOptions(options));
        typedOrValue(() => parseCallOptions('key', 'k', options));
      }),
    );
  });

  it('any key is accepted or refused with INVALID_OPTION', () => {
    fc.assert(
      fc.property(fc.anything(), (key) => {
        typedOrValue(() => parseCallOptions('key', key, {}));
        typedOrValue(() => parseCallOptions('prefix', key, {}));
      }),
    );
  });

  it('any CONSUL_HTTP_ADDR / CONSUL_HTTP_SSL is an address or INVALID_OPTION', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ maxLength: 6 }), (addr, ssl) => {
        typedOrValue(() => readEnvConfig({ CONSUL_HTTP_ADDR: addr, CONSUL_HTTP_SSL: ssl }));
      }),
    );
  });
});

describe('index rules', () => {
  const uint64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  it('never asks to block on 0, and never goes past what Consul sent', () => {
    fc.assert(
      fc.property(uint64, uint64, (sent, received) => {
        const next = nextIndex(sent, received);
        expect(next === 0n ? received < sent : next >= 1n).toBe(true);
        expect(next <= (received > 0n ? received : 1n)).toBe(true);
      }),
    );
  });
});
