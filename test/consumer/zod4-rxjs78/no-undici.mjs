// Run by scripts/consumer-test.sh: undici is an optional peer dependency of the SDK, so an
// app that does not ask for it has none (npm does not install optional peers); the main
// entry does not need it, and the /http subpath fails to load with an error naming it (what
// the user is to install).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const app = process.cwd();
assert.ok(!existsSync(join(app, 'node_modules', 'undici')), 'npm installed undici (an optional peer)');
assert.throws(
  () => createRequire(join(app, 'package.json')).resolve('undici'),
  { code: 'MODULE_NOT_FOUND' },
  'undici resolves from the app',
);

const sdk = await import('@consul-leader/discovery');
assert.equal(typeof sdk.createLeaderDiscovery, 'function', 'the main entry lacks createLeaderDiscovery');
sdk.createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 1 } }).close();

const error = await import('@consul-leader/discovery/http').then(
  () => assert.fail('@consul-leader/discovery/http loaded without undici'),
  (e) => e,
);
assert.equal(error.code, 'ERR_MODULE_NOT_FOUND', `unexpected error: ${error}`);
assert.match(error.message, /'undici'/, `the error does not name undici: ${error.message}`);
console.log(error.message.split('\n')[0].replace(app + '/', ''));
