/**
 * How a big prefix is split into sub-prefixes ("leaves"), each followed by a
 * recursive blocking query of its own: a change to one key then wakes one
 * small query instead of the prefix's whole answer (~2.4 MB at 10,000 keys).
 * Leaves are disjoint string prefixes: a key starts with at most one of them,
 * and the keys of each lie together in Consul's (byte) order, so the leaves'
 * answers laid end to end in leaf order are the prefix's answer.
 */

/** Leaves in Consul's key order (UTF-8 bytes). */
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
  /** What the leaf follows: every key starting with it, planned or not. */
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
  /** At most this many leaves (each holds a stream of the HTTP/2 connection). */
  readonly maxLeaves: number;
  /** A leaf of this many keys or fewer is not split further. */
  readonly minLeafKeys: number;
}

/**
 * Disjoint sub-prefixes of `prefix` that together hold every one of `keys`
 * (all under `prefix`), at most `maxLeaves`, in Consul's order; null when the
 * keys cannot be split in two or more. The biggest leaf is split first, while
 * its children fit in the budget; how even the leaves come out depends on the
 * names (a node splits into one leaf per next character, all or none).
 */
export function planLeaves(prefix: string, keys: readonly string[], limits: PlanLimits): string[] | null {
  if (keys.length === 0) return null;
  let leaves: Node[] = [{ prefix, keys }];
  for (;;) {
    let biggest: Node | undefined;
    for (const leaf of leaves) {
      if (leaf.children === null || leaf.keys.length <= limits.minLeafKeys) continue;
      if (!biggest || leaf.keys.length > biggest.keys.length) biggest = leaf;
    }
    if (!biggest) break;
    biggest.children ??= childrenOf(biggest);
    const children = biggest.children;
    if (children === null || leaves.length - 1 + children.length > limits.maxLeaves) {
      biggest.children = null;
      continue;
    }
    const split = biggest;
    leaves = leaves.flatMap((leaf) => (leaf === split ? children : [leaf]));
  }
  if (leaves.length < 2) return null;
  return leaves.map((leaf) => leaf.prefix).sort(byteOrder);
}

/** Which leaf a key falls under (its position in `leaves`), or -1 for none. */
export function leafFinder(leaves: readonly string[]): (key: string) => number {
  const positions = new Map(leaves.map((leaf, i) => [leaf, i]));
  const lengths = [...new Set(leaves.map((leaf) => leaf.length))];
  return (key) => {
    for (const length of lengths) {
      const i = positions.get(key.slice(0, length));
      if (i !== undefined) return i;
    }
    return -1;
  };
}
