/** The machine and software a run measured, for the report's header. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export interface Environment {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadAtStart: readonly number[];
  readonly node: string;
  readonly consul: string;
  /** The commit measured, and whether packages/ had uncommitted changes. */
  readonly source: string;
  /** name → version, as installed. */
  readonly packages: ReadonlyMap<string, string>;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    const model = line?.split(':')[1]?.trim();
    if (model) return model;
  } catch {
    // not Linux: fall back on Node's view
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** `<short commit>`, plus a note when packages/ differs from it; 'unknown' outside a git checkout. */
function sourceOf(root: string): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'packages') !== '';
    return dirty ? `${commit} with uncommitted changes in packages/` : commit;
  } catch {
    return 'unknown';
  }
}

function versionOf(packageJson: string): string {
  const parsed: unknown = JSON.parse(readFileSync(packageJson, 'utf8'));
  if (
    typeof parsed === 'object' &&
    parsed !== null &&
    'version' in parsed &&
    typeof parsed.version === 'string'
  ) {
    return parsed.version;
  }
  throw new Error(`${packageJson}: no version`);
}

export function describeEnvironment(root: string, consulBinary: string): Environment {
  const consul = execFileSync(consulBinary, ['version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '';
  const sdk = join(root, 'packages', 'discovery');
  return {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 1024 ** 3,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    loadAtStart: os.loadavg(),
    node: process.version,
    source: sourceOf(root),
    consul,
    packages: new Map([
      ['@consul-leader/discovery', versionOf(join(sdk, 'package.json'))],
      // As the SDK resolves them (the bench's own watchers use the same, from the lockfile).
      ['consul', versionOf(join(sdk, 'node_modules', 'consul', 'package.json'))],
      ['rxjs', versionOf(join(sdk, 'node_modules', 'rxjs', 'package.json'))],
      ['zod', versionOf(join(sdk, 'node_modules', 'zod', 'package.json'))],
    ]),
  };
}
