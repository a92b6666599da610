/**
 * Reading the answers of one followed prefix (`GET /v1/kv/<prefix>?recurse`)
 * by difference. Each answer is the whole list of entries (~1.3 MB at 10,000
 * keys) while a change usually touches one entry: only the bytes between the
 * part identical to the last accepted answer's start and the part identical
 * to its end are parsed; entries lying wholly in those parts are the last
 * answer's objects. Whenever anything about that is doubtful the answer is
 * parsed in full (`readKvList`), so the result and the errors are always those
 * of a full parse.
 */
import { parseConsulJson } from '@consul-leader/types';
import { type KvEntry, fastEntry, readKvList } from './kv.js';
import { assertStatus } from './status.js';
import type { ConsulResponse } from './transport.js';
import { KeyedList, indexOf } from '../prefix/keyed-list.js';

const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** The entries of an answer by key, in Consul's order; answers that change values but not keys share the index. */
export type KvEntries = KeyedList<KvEntry>;

/** Where the entries of an accepted body lie, in bytes. */
interface Layout {
  /** Offset of each entry's `{`, ascending. */
  readonly starts: readonly number[];
  /** Offset just past each entry's `}`. */
  readonly ends: readonly number[];
  /** Offset of the array's `]`. */
  readonly close: number;
}

/** The last accepted answer. */
interface Accepted {
  readonly body: Buffer;
  /** The answer as read; its objects are reused for keys not written since. */
  readonly map: ReadonlyMap<string, KvEntry>;
  /** undefined: the body cannot be diffed against (e.g. duplicate keys), the next one is parsed in full. */
  readonly diffable: { readonly entries: KvEntries; readonly layout: Layout } | undefined;
}

/** How the last `read` went; for tests and measurements. */
export type KvListReadPath = 'missing' | 'same' | 'incremental' | 'full';

/** Offset just past the object opening at `i` (a `{`), or -1 when it does not end before `to`. */
function objectEnd(buf: Buffer, i: number, to: number): number {
  let depth = 0;
  while (i < to) {
    const c = buf[i++];
    if (c === QUOTE) {
      // UTF-8 continuation bytes are >= 0x80: a quote or backslash byte is always the ASCII one.
      for (;;) {
        if (i >= to) return -1;
        const d = buf[i++];
        if (d === QUOTE) break;
        if (d === BACKSLASH) i++;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (--depth === 0) return i;
    }
  }
  return -1;
}

/**
 * Finds the objects of a run of array elements in `buf[from, to)`: objects
 * separated by single commas, whitespace allowed. `afterElement`: an element
 * precedes the run (it must open with a comma); `beforeElement`: an element
 * follows it (it must end with a comma), else the array's `]` does. Pushes
 * each object's [start, end); false on anything else. It only delimits: the
 * objects' contents are left to JSON.parse.
 */
function scanElements(
  buf: Buffer,
  from: number,
  to: number,
  afterElement: boolean,
  beforeElement: boolean,
  starts: number[],
  ends: number[],
): boolean {
  let needComma = afterElement;
  let found = 0;
  let i = from;
  while (i < to) {
    const c = buf[i];
    if (c === OPEN_OBJECT) {
      if (needComma) return false;
      const end = objectEnd(buf, i, to);
      if (end < 0) return false;
      starts.push(i);
      ends.push(end);
      found++;
      needComma = true;
      i = end;
    } else if (c === COMMA) {
      if (!needComma) return false;
      needComma = false;
      i++;
    } else if (isSpace(c)) {
      i++;
    } else {
      return false;
    }
  }
  return beforeElement ? !needComma : needComma || (!afterElement && found === 0);
}

/** The layout of a body that parsed into `count` entries, or undefined when it does not line up. */
function layoutOf(body: Buffer, count: number): Layout | undefined {
  // Consul's bodies start with `[` (a newline follows the `]`); anything else is never diffed.
  if (body[0] !== OPEN_ARRAY) return undefined;
  let close = body.length - 1;
  while (close > 0 && isSpace(body[close])) close--;
  if (close === 0 || body[close] !== CLOSE_ARRAY) return undefined;
  const starts: number[] = [];
  const ends: number[] = [];
  if (!scanElements(body, 1, close, false, false, starts, ends) || starts.length !== count) return undefined;
  return { starts, ends, close };
}

/** Length of the longest common prefix, by halving with native compares (no per-byte JS loop). */
export function commonPrefixLength(a: Buffer, b: Buffer): number {
  let lo = 0; // a[0, lo) equals b[0, lo)
  let hi = Math.min(a.length, b.length); // the answer is <= hi
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (a.compare(b, lo, mid, lo, mid) === 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Length of the longest common suffix, at most `max`, likewise. */
export function commonSuffixLength(a: Buffer, b: Buffer, max: number): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (a.compare(b, b.length - mid, b.length - lo, a.length - mid, a.length - lo) === 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** How many of the ascending `values` are <= `limit`. */
function countAtMost(values: readonly number[], limit: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] as number) <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Reads the answers of one followed prefix, each against the last accepted
 * one. 404 is "no keys". Unchanged keys keep their `KvEntry` object from the
 * last answer (downstream memoization relies on it). An answer that throws
 * (the typed errors of `readKvList`) leaves the reader as it was.
 */
export class KvListReader {
  private last: Accepted | undefined;
  /** How the last successful `read` went. */
  lastPath: KvListReadPath | undefined;

  /**
   * `seed`: entries already read for these keys (a bigger prefix's answer):
   * the first answer reuses those that are unchanged, like a previous answer's.
   */
  constructor(
    readonly prefix: string,
    private seed?: ReadonlyMap<string, KvEntry>,
  ) {}

  read(res: ConsulResponse): ReadonlyMap<string, KvEntry> {
    if (res.status === 404) {
      this.last = undefined;
      this.lastPath = 'missing';
      return new Map();
    }
    assertStatus(res);
    const last = this.last;
    if (last?.diffable) {
      const next = this.incremental(last, last.diffable.entries, last.diffable.layout, res.body);
      if (next) {
        this.lastPath = next === last ? 'same' : 'incremental';
        this.last = next;
        return next.map;
      }
    }
    const next = this.full(res, last?.map ?? this.seed);
    this.seed = undefined;
    this.last = next;
    this.lastPath = 'full';
    return next.map;
  }

  private full(res: ConsulResponse, previous: ReadonlyMap<string, KvEntry> | undefined): Accepted {
    const list = readKvList(res, this.prefix, previous);
    const index = indexOf(list);
    if (index.size !== list.length) {
      // Duplicate keys (not from Consul): the last one wins, as in a Map; never diffed against.
      const map = new Map<string, KvEntry>();
      for (const entry of list) map.set(entry.key, entry);
      return { body: res.body, map, diffable: undefined };
    }
    const entries = new KeyedList(list, index);
    const layout = layoutOf(res.body, list.length);
    return { body: res.body, map: entries, diffable: layout && { entries, layout } };
  }

  /** The answer read against `last`, or undefined when it must be parsed in full. */
  private incremental(
    last: Accepted,
    previous: KvEntries,
    layout: Layout,
    body: Buffer,
  ): Accepted | undefined {
    const old = last.body;
    const head = commonPrefixLength(old, body);
    if (head === 0) return undefined;
    // A repeat of the last answer (blocking-query re-reads one after an error) reads the same.
    if (head === old.length && head === body.length) return last;
    const delta = body.length - old.length;
    // Old offsets from tailFrom on hold the same bytes, shifted by delta, in the new body.
    const tailFrom = old.length - commonSuffixLength(old, body, Math.min(old.length, body.length) - head);
    const { starts, ends, close } = layout;
    const count = starts.length;
    const h = countAtMost(ends, head); // entries [0, h) lie in the identical head
    const t = countAtMost(starts, tailFrom - 1); // entries [t, count) lie in the identical tail
    const from = h > 0 ? (ends[h - 1] as number) : 1;
    let to: number;
    if (t < count) to = (starts[t] as number) + delta;
    else if (close >= tailFrom) to = close + delta;
    else return undefined;

    // The changed region: whole entries and their commas, parsed alone.
    const midStarts: number[] = [];
    const midEnds: number[] = [];
    if (!scanElements(body, from, to, h > 0, t < count, midStarts, midEnds)) return undefined;
    const middle: KvEntry[] = [];
    if (midStarts.length > 0) {
      let parsed: unknown;
      try {
        parsed = parseConsulJson(`[${body.toString('utf8', midStarts[0], midEnds[midEnds.length - 1])}]`);
      } catch {
        return undefined;
      }
      if (!Array.isArray(parsed) || parsed.length !== midStarts.length) return undefined;
      for (const item of parsed as unknown[]) {
        const key = (item as { Key?: unknown } | null)?.Key;
        const entry = fastEntry(item, typeof key === 'string' ? previous.get(key) : undefined);
        // A bad entry or key: the full parse says what is wrong.
        if (!entry?.key.startsWith(this.prefix)) return undefined;
        middle.push(entry);
      }
    }

    const list = previous.list.slice(0, h);
    const nextStarts = starts.slice(0, h);
    const nextEnds = ends.slice(0, h);
    // Same keys in the middle (a value, session or index changed): every position and the index stand.
    let sameKeys = middle.length === t - h;
    for (let i = 0; i < middle.length; i++) {
      const entry = middle[i] as KvEntry;
      if (sameKeys && entry.key !== previous.list[h + i]?.key) sameKeys = false;
      list.push(entry);
      nextStarts.push(midStarts[i] as number);
      nextEnds.push(midEnds[i] as number);
    }
    for (let i = t; i < count; i++) {
      list.push(previous.list[i] as KvEntry);
      nextStarts.push((starts[i] as number) + delta);
      nextEnds.push((ends[i] as number) + delta);
    }
    let index = previous.index;
    if (!sameKeys) {
      const rebuilt = indexOf(list);
      // Duplicate keys: let the full parse decide which object each key keeps.
      if (rebuilt.size !== list.length) return undefined;
      index = rebuilt;
    }
    const entries = new KeyedList(list, index);
    return {
      body,
      map: entries,
      diffable: { entries, layout: { starts: nextStarts, ends: nextEnds, close: close + delta } },
    };
  }
}
