/**
 * A TypeScript module run in a child process started with `--expose-gc` (so it
 * can measure its heap after a full collection) and an IPC channel: the
 * parent asks, the child answers (bench/in-child.ts), one message at a time
 * per request id.
 *
 * The child runs plain JavaScript, not through tsx: tsx's loader alone costs
 * an idle process about 0.6 s of CPU per minute (its hooks thread and V8's
 * helpers; a bare `node` idles at a few ms), which would drown what the idle
 * case measures. The module and everything it imports from this repository
 * are transpiled with the repository's TypeScript (no type check: `tsc`
 * does that) into node_modules/.cache/, from where `@consul-leader/discovery`
 * and `rxjs` resolve as usual.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Envelope, Reply } from './in-child.js';
import { stopOnInterrupt } from './lifecycle.js';
import type { SdkSnapshot } from './sdk-snapshot.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'node_modules', '.cache', 'consul-leader-bench');

/**
 * Writes `text` to `file` unless it already holds it, through a rename: a
 * child started earlier may be reading the file (children run side by side).
 */
function writeIfChanged(file: string, text: string): void {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}

/** Already transpiled in this process: entry and SDK → its JavaScript. */
const transpiled = new Map<string, string>();

/**
 * Transpiles `entry` and the repository modules it imports at run time; the
 * path of its JavaScript. With `sdk` (bench/sdk-snapshot.ts), the output goes
 * into the snapshot's folder and imports `@consul-leader/discovery` from it.
 */
export function transpileForNode(entry: string, sdk?: SdkSnapshot): string {
  const out = sdk ? join(sdk.dir, 'bench-js') : OUT;
  const outOf = (file: string): string => join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
  const memo = `${entry} ${sdk?.url ?? ''}`;
  const known = transpiled.get(memo);
  if (known) return known;
  const queue = [entry];
  const done = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (done.has(file)) continue;
    done.add(file);
    const { outputText: text } = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    });
    const outputText = sdk ? text.replaceAll("'@consul-leader/discovery'", JSON.stringify(sdk.url)) : text;
    writeIfChanged(outOf(file), outputText);
    // Type-only imports are gone from the output: follow what is left.
    for (const [, specifier] of outputText.matchAll(/(?:from|import\()\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
      queue.push(resolve(dirname(file), `${specifier}.ts`));
    }
  }
  writeIfChanged(join(out, 'package.json'), '{ "type": "module" }\n');
  transpiled.set(memo, outOf(entry));
  return outOf(entry);
}

const EXIT_TIMEOUT_MS = 5_000;

export class ChildModule<Request extends { readonly type: string }> {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #forget: () => void;
  #next = 0;
  #exited: Promise<void>;
  #failure: Error | undefined;

  /** `sdk`: where the child imports `@consul-leader/discovery` from (bench/sdk-snapshot.ts). */
  constructor(
    readonly name: string,
    entry: URL,
    sdk?: SdkSnapshot,
  ) {
    this.#child = fork(transpileForNode(fileURLToPath(entry), sdk), [], {
      execArgv: ['--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
    this.#child.once('exit', (code, signal) => {
      this.#failure = new Error(`${name}: child process exited (${signal ?? code})`);
      for (const waiter of this.#pending.values()) waiter.reject(this.#failure);
      this.#pending.clear();
    });
    this.#forget = stopOnInterrupt(() => this.stop());
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends `request`; resolves with the child's answer (typed by the caller). */
  ask<T>(request: Request): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = (this.#next += 1);
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const envelope: Envelope = { id, body: request };
      this.#child.send(envelope);
    });
  }

  /** Asks the child to exit (it closes what it opened), then kills it if it lingers. */
  async stop(): Promise<void> {
    this.#forget();
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      if (this.#child.connected) this.#child.send({ id: 0, body: { type: 'exit' } } satisfies Envelope);
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
  }
}
