/**
 * The write side, on bare `http` with a keep-alive agent so the timestamp of a
 * change is taken right before its PUT goes to the socket, with no client
 * library in between. Each change is either a new session acquiring the free
 * key (value `{"seq":k}`) or the holder releasing it (value `{"seq":k}` too).
 */
import http from 'node:http';
import { now } from '../clock.js';
import { httpRequest } from './http.js';
import type { LeaderView } from './protocol.js';

export interface Change {
  readonly seq: number;
  readonly kind: 'acquire' | 'release';
  /** The session that acquires or releases. */
  readonly session: string;
  /** `now()` right before the PUT was written. */
  readonly sentAt: number;
}

export class Election {
  readonly #agent = new http.Agent({ keepAlive: true });
  #holder: string | null = null;
  #seq = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly key: string,
  ) {}

  async #put(path: string, body: string, beforeSend?: () => void): Promise<string> {
    const { host, port } = this;
    const answer = await httpRequest({
      agent: this.#agent,
      host,
      port,
      method: 'PUT',
      path,
      body,
      beforeSend,
    });
    const text = answer.body.toString();
    if (answer.status !== 200) throw new Error(`PUT ${path}: HTTP ${answer.status}: ${text}`);
    return text;
  }

  async #createSession(name: string): Promise<string> {
    const text = await this.#put(
      '/v1/session/create',
      JSON.stringify({ Name: name, Behavior: 'release', LockDelay: '0s' }),
    );
    const created: unknown = JSON.parse(text);
    if (
      typeof created !== 'object' ||
      created === null ||
      !('ID' in created) ||
      typeof created.ID !== 'string'
    ) {
      throw new Error(`session/create: unexpected answer ${text}`);
    }
    return created.ID;
  }

  /**
   * Makes the next change and resolves once Consul has answered the PUT. A
   * new session is created beforehand, outside the timed part.
   */
  async next(): Promise<Change> {
    this.#seq += 1;
    const seq = this.#seq;
    const kind = this.#holder === null ? 'acquire' : 'release';
    const session = this.#holder ?? (await this.#createSession(`bench-${seq}`));
    let sentAt = 0;
    const answer = await this.#put(`/v1/kv/${this.key}?${kind}=${session}`, JSON.stringify({ seq }), () => {
      sentAt = now();
    });
    if (answer.trim() !== 'true') throw new Error(`PUT ?${kind}: Consul answered ${answer}`);
    this.#holder = kind === 'acquire' ? session : null;
    return { seq, kind, session, sentAt };
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Whether a watcher's view shows `change`: the new session with its seq, or no leader after a release. */
export function shows(change: Change): (view: LeaderView) => boolean {
  return change.kind === 'acquire'
    ? (view) => view !== null && view.session === change.session && view.seq === change.seq
    : (view) => view === null;
}
