#!/usr/bin/env node
// Checks that every relative link of README.md and docs/*.md resolves: the file (or folder)
// exists, and a `#anchor` names a heading of the target Markdown file (or of the same file).
// Anchors follow GitHub's rules: the heading's text, lowercased, punctuation removed, each
// space a `-`, and `-1`, `-2`… for repeated headings. Links in code are not links.
// Usage: node scripts/check-links.mjs [file.md ...]; exits 1 and lists the broken links.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const files =
  process.argv.length > 2
    ? process.argv.slice(2).map((file) => resolve(file))
    : [
        join(root, 'README.md'),
        ...readdirSync(join(root, 'docs'))
          .filter((name) => name.endsWith('.md'))
          .sort()
          .map((name) => join(root, 'docs', name)),
      ];

/** The Markdown text without fenced code blocks (kept as empty lines) and inline code spans. */
function prose(text) {
  const lines = [];
  let fence = null;
  for (const line of text.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fence === null && marker) fence = marker[1];
    else if (fence !== null && marker && marker[1][0] === fence[0] && marker[1].length >= fence.length)
      fence = null;
    else if (fence === null) {
      lines.push(line);
      continue;
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** GitHub's anchor for a heading's text. */
function slug(heading) {
  // Code spans are kept as they are written; outside them, links give their text and
  // inline HTML and emphasis markers give nothing.
  const text = heading
    .split(/(`+[^`]*?`+)/)
    .map((part, index) =>
      index % 2 === 1
        ? part.replace(/`/g, '')
        : part
            .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
            .replace(/<[^>]+>/g, '')
            .replace(/\*\*|__/g, ''),
    )
    .join('')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

const anchorCache = new Map();
/** The anchors of a Markdown file: its headings' slugs, and `id`/`name` attributes of HTML tags. */
function anchors(file) {
  let found = anchorCache.get(file);
  if (found) return found;
  found = new Set();
  const text = readFileSync(file, 'utf8');
  const seen = new Map();
  for (const line of prose(text).split('\n')) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of text.matchAll(/<[a-z][^>]*\s(?:id|name)="([^"]+)"/gi)) found.add(match[1]);
  anchorCache.set(file, found);
  return found;
}

/** The link targets of a Markdown file: inline links and images (their text may span
 * lines), and reference definitions, each with its line. */
function links(text) {
  const found = [];
  const code = prose(text).replace(/(`+)[^`]*?\1/g, (span) => span.replace(/[^\n]/g, ' '));
  const lineOf = (index) => code.slice(0, index).split('\n').length;
  for (const match of code.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
    found.push({ target: match[1], line: lineOf(match.index) });
  for (const match of code.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/gm))
    found.push({ target: match[1], line: lineOf(match.index) });
  return found;
}

const broken = [];
let checked = 0;
for (const file of files) {
  for (const { target, line } of links(readFileSync(file, 'utf8'))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // http:, mailto:…
    checked++;
    const hash = target.indexOf('#');
    const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
    const where = `${relative(root, file)}:${line}`;
    const destination = path === '' ? file : resolve(dirname(file), path);
    if (!existsSync(destination)) {
      broken.push(`${where}: ${target}: no such file or folder`);
      continue;
    }
    if (anchor === null) continue;
    if (statSync(destination).isDirectory() || !destination.endsWith('.md')) {
      broken.push(`${where}: ${target}: an anchor into a file that is not Markdown`);
      continue;
    }
    if (!anchors(destination).has(anchor))
      broken.push(`${where}: ${target}: no heading #${anchor} in ${relative(root, destination)}`);
  }
}

if (broken.length > 0) {
  console.error(`check-links: ${broken.length} broken link(s):\n  ${broken.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-links: ${checked} relative links in ${files.length} files, all resolve`);
