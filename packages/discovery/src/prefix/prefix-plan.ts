/**
 * How a big prefix is split into sub-prefixes, each followed by a
 * recursive blocking query of its own: a change to one key then wakes one
 * small query instead of the prefix's whole answer.
 * Sub-prefixes are disjoint string prefixes: a key starts with at most one of them,
 * and the keys of each lie together in Consul's (byte) order, so the sub-prefixes'
 * answers laid end to end in sub-prefix order are the prefix's answer.
 */

/** Sub-prefixes in Consul's key order (UTF-8 bytes). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The longest common prefix of `keys` (non-empty), by code unit. */
function commonPrefix(keys: readonly string[]): string {
  let common = keys[0] as string;
  for (const key of keys) {
    let i = 0;
    const max = Math.min(common.length, key.length);
    while (i < max && common.charCodeAt(i) === key.charCodeAt(i)) i++;
    if (i < common.length) common = common.slice(0, i);
    if (common === '') break;
  }
  return common;
}

interface Node {
  /** What the sub-prefix follows: every key starting with it, planned or not. */
  readonly prefix: string;
  readonly keys: readonly string[];
  /** undefined until asked; null: cannot be split (a key is the node itself) or not worth it. */
  children?: Node[] | null;
}

/**
 * The node's children: its keys grouped by their next character after their
 * common prefix. A key equal to that common prefix cannot go to any child (a
 * recursive read of a longer prefix would miss it): such a node stays whole.
 */
function childrenOf(node: Node): Node[] | null {
  const common = commonPrefix(node.keys);
  const groups = new Map<string, string[]>();
  for (const key of node.keys) {
    if (key.length === common.length) return null;
    // By code point, so that a surrogate pair is never cut in two.
    const next = String.fromCodePoint(key.codePointAt(common.length) as number);
    const group = groups.get(next);
    if (group) group.push(key);
    else groups.set(next, [key]);
  }
  return [...groups].map(([next, keys]) => ({ prefix: common + next, keys }));
}

export interface PlanLimits {
  /** At most this many sub-prefixes (each holds a stream of the HTTP/2 connection). */
  readonly maxSubPrefixes: number;
  /** A sub-prefix of this many keys or fewer is not split further. */
  readonly minSubPrefixKeys: number;
}

/**
 * Disjoint sub-prefixes of `prefix` that together hold every one of `keys`
 * (all under `prefix`), at most `maxSubPrefixes`, in Consul's order; null when the
 * keys cannot be split in two or more. The biggest sub-prefix is split first, while
 * its children fit in the budget; how even the sub-prefixes come out depends on the
 * names (a node splits into one sub-prefix per next character, all or none).
 */
export function planSubPrefixes(
  prefix: string,
  keys: readonly string[],
  limits: PlanLimits,
): string[] | null {
  if (keys.length === 0) return null;
  let subPrefixes: Node[] = [{ prefix, keys }];
  for (;;) {
    let biggest: Node | undefined;
    for (const subPrefix of subPrefixes) {
      if (subPrefix.children === null || subPrefix.keys.length <= limits.minSubPrefixKeys) continue;
      if (!biggest || subPrefix.keys.length > biggest.keys.length) biggest = subPrefix;
    }
    if (!biggest) break;
    biggest.children ??= childrenOf(biggest);
    const children = biggest.children;
    if (children === null || subPrefixes.length - 1 + children.length > limits.maxSubPrefixes) {
      biggest.children = null;
      continue;
    }
    const split = biggest;
    subPrefixes = subPrefixes.flatMap((subPrefix) => (subPrefix === split ? children : [subPrefix]));
  }
  if (subPrefixes.length < 2) return null;
  return subPrefixes.map((subPrefix) => subPrefix.prefix).sort(byteOrder);
}

/** Which sub-prefix a key falls under (its position in `sub-prefixes`), or -1 for none. */
export function subPrefixFinder(subPrefixes: readonly string[]): (key: string) => number {
  const positions = new Map(subPrefixes.map((subPrefix, i) => [subPrefix, i]));
  const lengths = [...new Set(subPrefixes.map((subPrefix) => subPrefix.length))];
  return (key) => {
    for (const length of lengths) {
      const i = positions.get(key.slice(0, length));
      if (i !== undefined) return i;
    }
    return -1;
  };
}
