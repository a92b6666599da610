import { describe, expect, it } from 'vitest';
import { byteOrder, subPrefixFinder, planSubPrefixes } from './prefix-plan.js';

const fleet = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `fleet/svc-${String(i).padStart(4, '0')}/leader`);

/** Every key under exactly one sub-prefix, and no sub-prefix a prefix of another. */
function expectPartition(subPrefixes: readonly string[], keys: readonly string[]): void {
  for (const key of keys)
    expect(subPrefixes.filter((subPrefix) => key.startsWith(subPrefix))).toHaveLength(1);
  for (const a of subPrefixes) for (const b of subPrefixes) if (a !== b) expect(b.startsWith(a)).toBe(false);
}

describe('planSubPrefixes', () => {
  it('splits 10,000 keys into disjoint subPrefixes within the budget, the biggest first', () => {
    const keys = fleet(10_000);
    const subPrefixes = planSubPrefixes('fleet/', keys, { maxSubPrefixes: 64, minSubPrefixKeys: 16 });
    expect(subPrefixes).not.toBeNull();
    expect(subPrefixes?.length).toBeLessThanOrEqual(64);
    expectPartition(subPrefixes ?? [], keys);
    // svc-0…svc-9 hold 1,000 keys each; six of them are split into ten sub-prefixes of 100.
    const sizes = (subPrefixes ?? []).map(
      (subPrefix) => keys.filter((key) => key.startsWith(subPrefix)).length,
    );
    expect(Math.max(...sizes)).toBe(1000);
    expect(sizes.filter((size) => size === 100)).toHaveLength(60);
  });

  it('returns the subPrefixes in Consul’s byte order, not JavaScript’s code unit order', () => {
    // By code unit U+1F600 (0xD83D 0xDE00) sorts before U+FF21; by UTF-8 bytes (F0… vs EF…), after.
    const keys = ['p/\u{1F600}/a', 'p/\u{1F600}/b', 'p/\uFF21/a', 'p/\uFF21/b', 'p/a/x', 'p/a/y'];
    const subPrefixes = planSubPrefixes('p/', keys, { maxSubPrefixes: 8, minSubPrefixKeys: 2 }) ?? [];
    expectPartition(subPrefixes, keys);
    // A surrogate pair is never cut: the sub-prefix holds the whole character.
    expect(subPrefixes).toEqual(['p/a', 'p/\uFF21', 'p/\u{1F600}']);
    expect(['p/\u{1F600}', 'p/\uFF21'].sort(byteOrder)).toEqual(['p/\uFF21', 'p/\u{1F600}']);
  });

  it('does not split a prefix that is itself a key, nor a few keys', () => {
    expect(
      planSubPrefixes('p/', ['p/', 'p/a', 'p/b'], { maxSubPrefixes: 8, minSubPrefixKeys: 1 }),
    ).toBeNull();
    expect(planSubPrefixes('p/', fleet(10), { maxSubPrefixes: 8, minSubPrefixKeys: 16 })).toBeNull();
    expect(planSubPrefixes('p/', [], { maxSubPrefixes: 8, minSubPrefixKeys: 1 })).toBeNull();
  });

  it('keeps a node whole when one of its keys is the node itself, and splits the others', () => {
    const keys = ['p/a', 'p/a/1', 'p/a/2', 'p/b/1', 'p/b/2', 'p/b/3'];
    const subPrefixes = planSubPrefixes('p/', keys, { maxSubPrefixes: 8, minSubPrefixKeys: 1 }) ?? [];
    expectPartition(subPrefixes, keys);
    expect(subPrefixes).toContain('p/a');
    expect(subPrefixes).toEqual(['p/a', 'p/b/1', 'p/b/2', 'p/b/3']);
  });

  it('splits a smaller subPrefix when the biggest has too many children for the budget', () => {
    const keys = [...Array.from({ length: 40 }, (_, i) => `p/a${i}`), ...['p/b1', 'p/b2', 'p/b3']];
    // p/a has 40 children (over budget); p/b's 3 fit.
    const subPrefixes = planSubPrefixes('p/', keys, { maxSubPrefixes: 6, minSubPrefixKeys: 1 }) ?? [];
    expectPartition(subPrefixes, keys);
    expect(subPrefixes.length).toBeLessThanOrEqual(6);
    expect(subPrefixes).toContain('p/b1');
  });
});

describe('subPrefixFinder', () => {
  it('finds the subPrefix a key falls under, or -1 for a key outside every subPrefix', () => {
    const find = subPrefixFinder(['p/a', 'p/b/1', 'p/b/2']);
    expect(find('p/a/x')).toBe(0);
    expect(find('p/b/2/leader')).toBe(2);
    expect(find('p/b/3')).toBe(-1);
    expect(find('p/c')).toBe(-1);
  });
});
