/**
 * The decoding of a discovery: one state mapper per schema and `decode`, whatever the
 * key or method, so that leader(), watch() and the prefix calls decode a snapshot once
 * between them; and the id under which calls with the same decoding share a pipeline.
 */
import type { LeaderOptions } from '../config/options.js';
import type { KeyEvent } from '../key/key-snapshot.js';
import type { LeaderState } from './states.js';
import { ANY_VALUE, type StandardSchemaV1 } from './standard-schema.js';
import { type Decoding, stateMapper } from './to-state.js';

type Mapper<T> = (event: KeyEvent) => LeaderState<T>;

export class Decoders {
  readonly #mappers = new WeakMap<object, Map<unknown, Mapper<unknown>>>();
  readonly #identities = new WeakMap<object, number>();
  #lastIdentity = 0;

  /** The call's schema and `decode`, with their defaults (any JSON). */
  decodingOf<T>(call: LeaderOptions<T>): Decoding<T> {
    return {
      schema: call.schema ?? (ANY_VALUE as StandardSchemaV1<unknown, T>),
      decode: call.decode ?? 'json',
    };
  }

  /** The state mapper of the call's decoding (it remembers the state made for each snapshot). */
  mapperOf<T>(call: LeaderOptions<T>): Mapper<T> {
    const decoding = this.decodingOf(call);
    let byDecode = this.#mappers.get(decoding.schema);
    if (!byDecode) {
      byDecode = new Map();
      this.#mappers.set(decoding.schema, byDecode);
    }
    let mapper = byDecode.get(decoding.decode);
    if (!mapper) {
      mapper = stateMapper(decoding) as Mapper<unknown>;
      byDecode.set(decoding.decode, mapper);
    }
    return mapper as Mapper<T>;
  }

  /**
   * The id of a pipeline over the stream `streamId`: calls with the same method (`kind`),
   * stream, schema, decoding and `extra` share it, and decode a change once.
   */
  pipelineId(kind: string, streamId: string, call: LeaderOptions<unknown>, extra?: unknown): string {
    // After the JSON array, the stream's id (unambiguous: an array ends where it ends).
    return (
      JSON.stringify([
        kind,
        call.schema ? this.#identityOf(call.schema) : 0,
        typeof call.decode === 'function' ? this.#identityOf(call.decode) : (call.decode ?? 'json'),
        extra ?? null,
      ]) + streamId
    );
  }

  #identityOf(value: object): number {
    let id = this.#identities.get(value);
    if (id === undefined) {
      id = this.#lastIdentity += 1;
      this.#identities.set(value, id);
    }
    return id;
  }
}
