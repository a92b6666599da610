/**
 * The SDK build a run measures, frozen at its start. Other work in the same
 * checkout may rebuild packages/*\/dist while a long run is going on; the
 * cases that start processes or threads later (2, 4, 5) load this copy, so
 * every case measures the build named in the report's header. Case 1 loads
 * packages/discovery/dist itself, in its first seconds.
 *
 * The copy lives in node_modules/.cache/, laid out as a node_modules folder of
 * its own, so `@consul-leader/types` resolves to the copied build and `rxjs`,
 * `zod` and `consul` to the repository's (the versions the header lists).
 */
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['discovery', 'types'] as const;

export interface SdkSnapshot {
  /** The copy's folder (this run's own). */
  readonly dir: string;
  /** `file:` URL of the copied `@consul-leader/discovery` entry. */
  readonly url: string;
  /** Short hash of the copied dist/ folders. */
  readonly hash: string;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** Short hash of packages/*\/dist as they are now. */
export function distHash(root = join(ROOT, 'packages')): string {
  const hash = createHash('sha256');
  for (const name of PACKAGES) {
    for (const file of files(join(root, name, 'dist'))) {
      hash.update(file.slice(root.length));
      hash.update(readFileSync(file));
    }
  }
  return hash.digest('hex').slice(0, 12);
}

export function snapshotSdk(): SdkSnapshot {
  const out = join(ROOT, 'node_modules', '.cache', 'consul-leader-bench', 'sdk', process.pid.toString());
  rmSync(out, { recursive: true, force: true });
  for (const name of PACKAGES) {
    const from = join(ROOT, 'packages', name);
    const to = join(out, 'node_modules', '@consul-leader', name);
    cpSync(join(from, 'package.json'), join(to, 'package.json'));
    cpSync(join(from, 'dist'), join(to, 'dist'), { recursive: true });
  }
  const copied = join(out, 'node_modules', '@consul-leader');
  return {
    dir: out,
    url: pathToFileURL(join(copied, 'discovery', 'dist', 'index.js')).href,
    hash: distHash(copied),
  };
}

/** Removes the copy (and the children transpiled into it). */
export function removeSnapshot(snapshot: SdkSnapshot): void {
  rmSync(snapshot.dir, { recursive: true, force: true });
}
