import { describe, expect, it } from 'vitest';
import { KeyedList, PositionalMap, changedPositions } from './keyed-list.js';

const item = (key: string, n: number) => ({ key, n });

describe('KeyedList', () => {
  it('reads like a Map in list order, and tells changed positions while the keys stay', () => {
    const a = KeyedList.of([item('p/a', 1), item('p/b', 2), item('p/c', 3)]);
    expect([...a.keys()]).toEqual(['p/a', 'p/b', 'p/c']);
    expect(a.get('p/b')?.n).toBe(2);
    const b = new KeyedList([a.list[0], item('p/b', 5), a.list[2]] as typeof a.list, a.index);
    expect(changedPositions(a, b)).toEqual([1]);
    // Another index: every key must be compared.
    expect(changedPositions(a, KeyedList.of([...b.list]))).toBeNull();
  });
});

describe('PositionalMap', () => {
  const keys = KeyedList.of([item('p/a', 1), item('p/b', 2), item('p/c', 3), item('p/d', 4)]);

  it('is a read-only Map of the positions that hold a value, in key order', () => {
    const map = new PositionalMap(keys, ['A', undefined, 'C', undefined], 2);
    expect(map.size).toBe(2);
    expect(map.get('p/a')).toBe('A');
    expect(map.get('p/b')).toBeUndefined();
    expect(map.has('p/b')).toBe(false);
    expect(map.has('p/c')).toBe(true);
    expect(map.has('p/zzz')).toBe(false);
    expect([...map]).toEqual([
      ['p/a', 'A'],
      ['p/c', 'C'],
    ]);
    expect([...map.keys()]).toEqual(['p/a', 'p/c']);
    expect([...map.values()]).toEqual(['A', 'C']);
    const seen: string[] = [];
    map.forEach((value, key, self) => {
      expect(self).toBe(map);
      seen.push(`${key}=${value}`);
    });
    expect(seen).toEqual(['p/a=A', 'p/c=C']);
    expect(new Map(map)).toEqual(
      new Map([
        ['p/a', 'A'],
        ['p/c', 'C'],
      ]),
    );
  });

  it('knows a map made from another by a change differs from it, and nothing else', () => {
    const first = new PositionalMap(keys, ['A', 'B', 'C', 'D'], 4);
    const second = new PositionalMap(keys, ['A', 'b', 'C', 'D'], 4, first);
    const third = new PositionalMap(keys, ['A', 'b', 'C', 'D'], 4);
    expect(PositionalMap.differs(first, second)).toBe(true);
    expect(PositionalMap.differs(second, first)).toBe(false);
    expect(PositionalMap.differs(first, third)).toBe(false);
    expect(PositionalMap.differs(new Map(first), second)).toBe(false);
  });
});
