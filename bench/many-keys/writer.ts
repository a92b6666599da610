/**
 * Case 3's writes, from the main thread straight to Consul (no proxy): the
 * leader values, and the prefixes of keys each row follows.
 */
import http from 'node:http';
import https from 'node:https';
import { now } from '../clock.js';
import { httpRequest } from '../latency/http.js';
import { keyOf } from './protocol.js';

/** Writes to Consul directly (not through a proxy) on bare `http`, keep-alive; on `https` with `ca`. */
export class Writer {
  readonly #agent: http.Agent;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly ca?: string,
  ) {
    this.#agent =
      ca === undefined ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true, ca });
  }

  /** Sends `body` with PUT; resolves with `now()` taken right before it went to the socket. */
  async put(path: string, body: unknown): Promise<{ sentAt: number; text: string }> {
    let sentAt = 0;
    const call = {
      agent: this.#agent,
      host: this.host,
      port: this.port,
      method: 'PUT',
      path,
      body: JSON.stringify(body),
      beforeSend: () => {
        sentAt = now();
      },
      ...(this.ca === undefined ? {} : { ca: this.ca }),
    } as const;
    const answer = await httpRequest(call);
    const text = answer.body.toString();
    if (answer.status !== 200) throw new Error(`PUT ${path}: HTTP ${answer.status}: ${text}`);
    return { sentAt, text };
  }

  async session(name: string): Promise<string> {
    const { text } = await this.put('/v1/session/create', { Name: name, LockDelay: '0s' });
    return (JSON.parse(text) as { ID: string }).ID;
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** The value of key number `i` with the tag `tag` (base64, as `/v1/txn` takes it). */
export const leaderValue = (i: number, tag: string): string =>
  Buffer.from(JSON.stringify({ host: `10.0.${i >> 8}.${i & 255}`, port: 5432, tag })).toString('base64');

/** Gives each of `size` keys under `prefix` a leader, `holder`, with the tag `a`; records it in `state`. */
async function seed(
  writer: Writer,
  prefix: string,
  size: number,
  holder: string,
  state: Map<string, string | null>,
): Promise<void> {
  for (let start = 0; start < size; start += 64) {
    const ops = [];
    for (let i = start; i < Math.min(size, start + 64); i += 1) {
      const key = keyOf(prefix, i);
      ops.push({ KV: { Verb: 'lock', Key: key, Value: leaderValue(i, 'a'), Session: holder } });
      state.set(key, 'a');
    }
    await writer.put('/v1/txn', ops);
  }
}

/** A prefix of `size` keys written by `seedPrefix`: every key held by `holder`; `state` is what each shows now. */
export interface SeededPrefix {
  readonly prefix: string;
  readonly holder: string;
  /** What each key shows now: the tag of its value, or null with no leader. */
  readonly state: Map<string, string | null>;
}

/** Writes `fleet<size>/`, every key held by `holder`. */
export async function seedPrefix(writer: Writer, size: number, holder: string): Promise<SeededPrefix> {
  const prefix = `fleet${size}/`;
  const state = new Map<string, string | null>();
  await seed(writer, prefix, size, holder, state);
  return { prefix, holder, state };
}

/**
 * The prefix of each size on one agent, written the first time it is asked
 * for (with a new holder session), the same one afterwards: a later table
 * follows the keys as the tables before it left them.
 */
export function writtenOnce(
  writer: Writer,
  log: (line: string) => void,
): (size: number) => Promise<SeededPrefix> {
  const seeded = new Map<number, SeededPrefix>();
  return async (size) => {
    let written = seeded.get(size);
    if (!written) {
      written = await seedPrefix(writer, size, await writer.session('holder'));
      seeded.set(size, written);
      log(`many-keys: ${size} keys written`);
    }
    return written;
  };
}
