// Run by scripts/consumer-test.sh: the SDK's observables are the app's rxjs 7.5.0 ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import { Observable, map } from 'rxjs';
import { z } from 'zod';
import { createLeaderDiscovery } from '@consul-leader/discovery';

const discovery = createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 1 } });
const Node = z.object({ host: z.string() });
const leader$ = discovery.leader('service/db/leader', { schema: Node });
assert.ok(leader$ instanceof Observable, "leader() is not an instance of the app's rxjs Observable");
const host$ = leader$.pipe(map((leader) => leader?.node.host ?? null));
assert.ok(host$ instanceof Observable, 'pipe(map(...)) did not give an Observable');
for (const stream of [discovery.watch('k'), discovery.leaders('p/'), discovery.watchPrefix('p/')]) {
  assert.ok(stream instanceof Observable, 'a stream is not an instance of the app rxjs Observable');
}
discovery.close();
const { version } = JSON.parse(
  readFileSync(new URL('node_modules/rxjs/package.json', import.meta.url), 'utf8'),
);
console.log(`instanceof Observable with rxjs ${version}`);
