/** Bare HTTP/1.1 requests to Consul on Node's `http` (or `https`), with no client library in between. */
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface HttpCall {
  readonly agent: http.Agent;
  readonly host: string;
  readonly port: number;
  readonly method: 'GET' | 'PUT';
  readonly path: string;
  readonly body?: string;
  /** Called right before the request is handed to the socket; for timestamps. */
  readonly beforeSend?: () => void;
  /** Receives the request, so the caller can destroy it (to stop a blocking read). */
  readonly onRequest?: (request: http.ClientRequest) => void;
  /** With a CA (PEM): over `https`, trusting it; `agent` must then be an `https.Agent`. */
  readonly ca?: string;
}

export function httpRequest(call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = call.body === undefined ? undefined : Buffer.from(call.body);
    const request = (call.ca === undefined ? http : https).request(
      {
        agent: call.agent,
        ...(call.ca === undefined ? {} : { ca: call.ca }),
        host: call.host,
        port: call.port,
        method: call.method,
        path: call.path,
        headers: body ? { 'content-length': body.length } : {},
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    call.onRequest?.(request);
    call.beforeSend?.();
    request.end(body);
  });
}

/** The `X-Consul-Index` header as a bigint (0n when absent or malformed). */
export function consulIndex(headers: http.IncomingHttpHeaders): bigint {
  const raw = headers['x-consul-index'];
  return typeof raw === 'string' && /^\d+$/.test(raw) ? BigInt(raw) : 0n;
}

/** The holder and value of a `GET /v1/kv/<key>` answer's entry. */
export interface KvHolder {
  readonly session: string | null;
  readonly valueText: string | null;
}

/** Reads the first entry of a KV answer body (`[{"Session": ..., "Value": base64}]`); null for a 404. */
export function readKvHolder(answer: HttpAnswer): KvHolder | null {
  if (answer.status === 404) return null;
  if (answer.status !== 200) throw new Error(`GET kv: HTTP ${answer.status}: ${answer.body.toString()}`);
  const parsed: unknown = JSON.parse(answer.body.toString());
  const entry: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  if (typeof entry !== 'object' || entry === null) return null;
  const session = 'Session' in entry && typeof entry.Session === 'string' ? entry.Session : null;
  const value = 'Value' in entry && typeof entry.Value === 'string' ? entry.Value : null;
  return { session, valueText: value === null ? null : Buffer.from(value, 'base64').toString() };
}
