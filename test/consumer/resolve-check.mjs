// Run by scripts/consumer-test.sh in each installed app (cwd): every package resolves
// inside the app (nothing leaks in from a parent node_modules, such as the workspace's),
// the SDK's rxjs and @consul-leader/types (and undici, when the app has it) are the app's
// own copies (peer dependencies: one copy), and a one-line summary of the installed
// versions is printed.
// Usage: node resolve-check.mjs @consul-leader/discovery @consul-leader/types rxjs [more...]
// (imports only node: built-ins)
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

const app = process.cwd();
const inApp = join(app, 'node_modules') + sep;
const fromApp = createRequire(join(app, 'package.json'));

/** The package.json of the installed package that `file` belongs to. */
function manifestOf(name, file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && dir.endsWith(join('node_modules', name))) {
      return { dir, ...JSON.parse(readFileSync(candidate, 'utf8')) };
    }
  }
  throw new Error(`no package.json of ${name} above ${file}`);
}

function resolveFrom(require, name) {
  // Subpath-less resolution; typescript and ESM-only packages resolve through "default".
  const file = require.resolve(name);
  return { file, ...manifestOf(name, file) };
}

const found = {};
for (const name of process.argv.slice(2)) {
  const pkg = resolveFrom(fromApp, name);
  assert.ok(pkg.file.startsWith(inApp), `${name} resolves outside the app: ${pkg.file}`);
  found[name] = pkg;
}

const sdk = found['@consul-leader/discovery'];
const fromSdk = createRequire(sdk.file);
const parts = [`discovery ${sdk.version}`];
// undici (an optional peer of the SDK, for its /http subpath) too, in the apps that have it.
for (const name of ['@consul-leader/types', 'rxjs', ...(found.undici ? ['undici'] : [])]) {
  const mine = resolveFrom(fromSdk, name);
  const theirs = resolveFrom(fromApp, name);
  assert.equal(mine.dir, theirs.dir, `the SDK has its own ${name} (${mine.version} in ${mine.dir})`);
  if (name === '@consul-leader/types') parts.push(`types ${theirs.version}`);
  else parts.push(`${name} ${theirs.version} (one copy)`);
}
const appZod = existsSync(join(app, 'node_modules', 'zod', 'package.json'))
  ? resolveFrom(fromApp, 'zod')
  : null;
const sdkZod = resolveFrom(fromSdk, 'zod');
parts.push(
  appZod && appZod.dir === sdkZod.dir
    ? `zod ${appZod.version} (shared with the SDK)`
    : `zod ${appZod?.version ?? 'none'} (the SDK's own: ${sdkZod.version})`,
);
for (const [name, pkg] of Object.entries(found)) {
  if (!['@consul-leader/discovery', '@consul-leader/types', 'rxjs', 'undici', 'zod'].includes(name)) {
    parts.push(`${name} ${pkg.version}`);
  }
}
// @consul-leader/types has zod as a peer: it must use the app's zod (or the hoisted SDK's).
const typesZod = resolveFrom(createRequire(found['@consul-leader/types'].file), 'zod');
assert.ok(typesZod.file.startsWith(inApp), `types' zod resolves outside the app: ${typesZod.file}`);
assert.equal(typesZod.dir, join(app, 'node_modules', 'zod'), `types' zod is not the top-level one`);
console.log(parts.join(', '));
