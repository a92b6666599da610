// The headline figures of `pnpm bench:quick` logs, side by side: case 1's SDK p50 / floor
// p50, and case 3's 1,000-key rows (one query over plain HTTP; HTTPS split p50).
import { readFileSync } from 'node:fs';

const cells = (line) =>
  line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
console.log(
  '| run | case 1: SDK p50 / floor p50 | case 3, 1,000 keys: SDK p50 / floor p50 (leaders, leader per key) | case 3, HTTPS split p50 ms (leaders, leader per key) |',
);
console.log('| --- | --- | --- | --- |');
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const ratio = /SDK p50 \/ floor p50 = \*\*([0-9.]+)x\*\*/.exec(text)?.[1] ?? '?';
  const case3 = text.slice(text.indexOf('## Case 3'), text.indexOf('## Case 4'));
  const rows = case3
    .split('\n')
    .filter((l) => l.startsWith('| 1000 '))
    .map(cells);
  const plain = rows
    .slice(0, 2)
    .map((r) => r[7])
    .join(', ');
  const split = rows
    .slice(4, 6)
    .map((r) => r[6])
    .join(', ');
  console.log(`| ${file} | ${ratio}x | ${plain} | ${split} |`);
}
