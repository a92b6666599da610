/**
 * Values by key in a fixed order: a list and a key → position index. Two
 * lists with the same keys in the same order share their index, so a change
 * to a few values of a big prefix neither rebuilds a Map (about 3 ms for
 * 10,000 keys) nor looks every key up to find what changed (`changedPositions`).
 */
export class KeyedList<V extends { readonly key: string }> implements ReadonlyMap<string, V> {
  constructor(
    /** In order, one per key. */
    readonly list: readonly V[],
    /** Each key's position in `list`, inserted in that order. */
    readonly index: ReadonlyMap<string, number>,
  ) {}

  /** `entries` itself when it is a KeyedList, else a list of its values. */
  static from<V extends { readonly key: string }>(entries: ReadonlyMap<string, V>): KeyedList<V> {
    return entries instanceof KeyedList ? entries : KeyedList.of([...entries.values()]);
  }

  /** A list over `list`, with an index of its own. */
  static of<V extends { readonly key: string }>(list: readonly V[]): KeyedList<V> {
    return new KeyedList(list, indexOf(list));
  }

  get size(): number {
    return this.list.length;
  }

  get(key: string): V | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.list[i];
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  keys(): MapIterator<string> {
    return this.index.keys();
  }

  values(): MapIterator<V> {
    return this.list.values();
  }

  entries(): MapIterator<[string, V]> {
    return this.list.map((value): [string, V] => [value.key, value]).values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const value of this.list) fn.call(thisArg, value, value.key, this);
  }

  get [Symbol.toStringTag](): string {
    return 'KeyedList';
  }
}

/** Key → position; duplicate keys make the index smaller than the list. */
export function indexOf(list: readonly { readonly key: string }[]): Map<string, number> {
  const index = new Map<string, number>();
  for (let i = 0; i < list.length; i++) index.set((list[i] as { key: string }).key, i);
  return index;
}

/**
 * The positions whose value is not the same object in `next` as in `previous`,
 * when both are KeyedLists of the same keys in the same order (a shared index);
 * null when they are not, and every key must be compared.
 */
export function changedPositions<V extends { readonly key: string }>(
  previous: ReadonlyMap<string, V> | undefined,
  next: ReadonlyMap<string, V>,
): number[] | null {
  if (!(previous instanceof KeyedList && next instanceof KeyedList) || previous.index !== next.index) {
    return null;
  }
  const changed: number[] = [];
  const a = previous.list;
  const b = next.list;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) changed.push(i);
  return changed;
}

/**
 * A read-only map over a KeyedList's keys and a value, or none, per position:
 * made with one array copy where a Map costs about 3 ms per 10,000 keys, for
 * the public maps of a prefix (`leaders()`, `watchLeaders()`). Iterating it
 * lists its entries once, on first use. Never changed once made.
 */
export class PositionalMap<V> implements ReadonlyMap<string, V> {
  static #made = 0;
  readonly #id = ++PositionalMap.#made;
  /** The id of the map this one was made from by changing values (0: none); not the map, which would chain them all. */
  readonly #changedFrom: number;
  #entries: [string, V][] | undefined;

  constructor(
    private readonly keyed: KeyedList<{ readonly key: string }>,
    /** By position in `keyed`; undefined: the key is absent. */
    private readonly values_: readonly (V | undefined)[],
    readonly size: number,
    changedFrom?: ReadonlyMap<string, V>,
  ) {
    this.#changedFrom = changedFrom instanceof PositionalMap ? changedFrom.#id : 0;
  }

  /** `b` was made from `a` by changing values: they differ, no need to compare them key by key. */
  static differs<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): boolean {
    return a instanceof PositionalMap && b instanceof PositionalMap && b.#changedFrom === a.#id;
  }

  get(key: string): V | undefined {
    const i = this.keyed.index.get(key);
    return i === undefined ? undefined : this.values_[i];
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  #list(): [string, V][] {
    if (!this.#entries) {
      const entries: [string, V][] = [];
      const { list } = this.keyed;
      for (let i = 0; i < list.length; i++) {
        const value = this.values_[i];
        if (value !== undefined) entries.push([(list[i] as { readonly key: string }).key, value]);
      }
      this.#entries = entries;
    }
    return this.#entries;
  }

  entries(): MapIterator<[string, V]> {
    return this.#list().values();
  }

  keys(): MapIterator<string> {
    return this.#list()
      .map(([key]) => key)
      .values();
  }

  values(): MapIterator<V> {
    return this.#list()
      .map(([, value]) => value)
      .values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.#list()) fn.call(thisArg, value, key, this);
  }

  get [Symbol.toStringTag](): string {
    return 'PositionalMap';
  }
}
