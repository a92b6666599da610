import { describe, expect, it } from 'vitest';
import { byteOrder, leafFinder, planLeaves } from './prefix-plan.js';

const fleet = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `fleet/svc-${String(i).padStart(4, '0')}/leader`);

/** Every key under exactly one leaf, and no leaf a prefix of another. */
function expectPartition(leaves: readonly string[], keys: readonly string[]): void {
  for (const key of keys) expect(leaves.filter((leaf) => key.startsWith(leaf))).toHaveLength(1);
  for (const a of leaves) for (const b of leaves) if (a !== b) expect(b.startsWith(a)).toBe(false);
}

describe('planLeaves', () => {
  it('splits 10,000 keys into disjoint leaves within the budget, the biggest first', () => {
    const keys = fleet(10_000);
    const leaves = planLeaves('fleet/', keys, { maxLeaves: 64, minLeafKeys: 16 });
    expect(leaves).not.toBeNull();
    expect(leaves?.length).toBeLessThanOrEqual(64);
    expectPartition(leaves ?? [], keys);
    // svc-0…svc-9 hold 1,000 keys each; six of them are split into ten leaves of 100.
    const sizes = (leaves ?? []).map((leaf) => keys.filter((key) => key.startsWith(leaf)).length);
    expect(Math.max(...sizes)).toBe(1000);
    expect(sizes.filter((size) => size === 100)).toHaveLength(60);
  });

  it('returns the leaves in Consul’s byte order, not JavaScript’s code unit order', () => {
    // By code unit U+1F600 (0xD83D 0xDE00) sorts before U+FF21; by UTF-8 bytes (F0… vs EF…), after.
    const keys = ['p/\u{1F600}/a', 'p/\u{1F600}/b', 'p/\uFF21/a', 'p/\uFF21/b', 'p/a/x', 'p/a/y'];
    const leaves = planLeaves('p/', keys, { maxLeaves: 8, minLeafKeys: 2 }) ?? [];
    expectPartition(leaves, keys);
    // A surrogate pair is never cut: the leaf holds the whole character.
    expect(leaves).toEqual(['p/a', 'p/\uFF21', 'p/\u{1F600}']);
    expect(['p/\u{1F600}', 'p/\uFF21'].sort(byteOrder)).toEqual(['p/\uFF21', 'p/\u{1F600}']);
  });

  it('does not split a prefix that is itself a key, nor a few keys', () => {
    expect(planLeaves('p/', ['p/', 'p/a', 'p/b'], { maxLeaves: 8, minLeafKeys: 1 })).toBeNull();
    expect(planLeaves('p/', fleet(10), { maxLeaves: 8, minLeafKeys: 16 })).toBeNull();
    expect(planLeaves('p/', [], { maxLeaves: 8, minLeafKeys: 1 })).toBeNull();
  });

  it('keeps a node whole when one of its keys is the node itself, and splits the others', () => {
    const keys = ['p/a', 'p/a/1', 'p/a/2', 'p/b/1', 'p/b/2', 'p/b/3'];
    const leaves = planLeaves('p/', keys, { maxLeaves: 8, minLeafKeys: 1 }) ?? [];
    expectPartition(leaves, keys);
    expect(leaves).toContain('p/a');
    expect(leaves).toEqual(['p/a', 'p/b/1', 'p/b/2', 'p/b/3']);
  });

  it('splits a smaller leaf when the biggest has too many children for the budget', () => {
    const keys = [...Array.from({ length: 40 }, (_, i) => `p/a${i}`), ...['p/b1', 'p/b2', 'p/b3']];
    // p/a has 40 children (over budget); p/b's 3 fit.
    const leaves = planLeaves('p/', keys, { maxLeaves: 6, minLeafKeys: 1 }) ?? [];
    expectPartition(leaves, keys);
    expect(leaves.length).toBeLessThanOrEqual(6);
    expect(leaves).toContain('p/b1');
  });
});

describe('leafFinder', () => {
  it('finds the leaf a key falls under, or -1 for a key outside every leaf', () => {
    const find = leafFinder(['p/a', 'p/b/1', 'p/b/2']);
    expect(find('p/a/x')).toBe(0);
    expect(find('p/b/2/leader')).toBe(2);
    expect(find('p/b/3')).toBe(-1);
    expect(find('p/c')).toBe(-1);
  });
});
