/** A KV read as a proxy saw it: which key, and how (`?recurse`, `?keys`, blocking on `?index`). */
export interface KvRead {
  readonly key: string;
  readonly recurse: boolean;
  readonly keys: boolean;
  readonly blocking: boolean;
}

/** The KV read a request path (with its query) makes; undefined for any other request. */
export function kvRead(path: string): KvRead | undefined {
  const url = new URL(path, 'https://proxy');
  if (!url.pathname.startsWith('/v1/kv/')) return undefined;
  return {
    key: decodeURIComponent(url.pathname.slice('/v1/kv/'.length)),
    recurse: url.searchParams.has('recurse'),
    keys: url.searchParams.has('keys'),
    blocking: url.searchParams.has('index'),
  };
}
