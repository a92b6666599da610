// Run by scripts/consumer-test.sh against a real Consul agent. The script has written
// LEADER_KEY = {"host":"10.0.0.1","port":5432} with session SESSION_A. Here:
//   1. current() returns that leader, decoded by the zod schema;
//   2. leader() emits it, then sees one change: session A releases the key and a new
//      session B acquires it with {"host":"10.0.0.2","port":5432} (a null between the two
//      is allowed: the release and the acquire are two writes);
//   3. close() completes the stream and leaves nothing open (the process exits by itself).
/* global fetch */
import assert from 'node:assert/strict';
import { clearTimeout, setTimeout } from 'node:timers';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { createLeaderDiscovery } from '@consul-leader/discovery';

const [host, port] = process.env.CONSUL_ADDR.split(':');
const key = process.env.LEADER_KEY;
const sessionA = process.env.SESSION_A;
const api = `http://${host}:${port}/v1`;
const seen = [];
const watchdog = setTimeout(() => {
  console.error(`timed out after 30 s; leader() emitted: ${JSON.stringify(seen)}`);
  process.exit(1);
}, 30_000);

async function put(path, body) {
  const res = await fetch(`${api}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function handOver() {
  const { ID: sessionB } = await put('/session/create', { Name: 'consumer-b', LockDelay: '0s' });
  assert.equal(await put(`/kv/${key}?release=${sessionA}`), true, 'release by session A refused');
  assert.equal(
    await put(`/kv/${key}?acquire=${sessionB}`, { host: '10.0.0.2', port: 5432 }),
    true,
    'acquire by session B refused',
  );
  return sessionB;
}

const Node = z.object({ host: z.string(), port: z.number().int() });
const discovery = createLeaderDiscovery({ consul: { host, port: Number(port) } });

// 1. current()
const now = await discovery.current(key, { schema: Node, timeout: '5s' });
assert.ok(now !== null, 'current() found no leader');
assert.deepEqual(now.node, { host: '10.0.0.1', port: 5432 });
assert.equal(now.session.id, sessionA);
console.log(
  `current(): ${now.node.host}:${now.node.port}, session ${now.session.id}, lockIndex ${now.lockIndex}`,
);

// 2. leader(): the first leader, then one change
const leader$ = discovery.leader(key, { schema: Node });
assert.ok(leader$ instanceof Observable);
let completed = false;
let sessionB;
await new Promise((resolve, reject) => {
  let handing = false;
  leader$.subscribe({
    next: (leader) => {
      seen.push(leader === null ? null : leader.node.host);
      if (leader?.node.host === '10.0.0.1' && !handing) {
        handing = true;
        handOver().then((id) => (sessionB = id), reject);
      } else if (leader?.node.host === '10.0.0.2') {
        if (leader.session.id === sessionB || sessionB === undefined) resolve();
      }
    },
    error: reject,
    complete: () => {
      completed = true;
    },
  });
});
assert.equal(seen[0], '10.0.0.1', `first emission: ${JSON.stringify(seen)}`);
assert.equal(seen.at(-1), '10.0.0.2');
assert.ok(
  seen.slice(1, -1).every((v) => v === null),
  `more than one change: ${JSON.stringify(seen)}`,
);
console.log(`leader(): ${seen.map((host) => host ?? 'null').join(' -> ')}`);

// 3. close()
discovery.close();
assert.ok(completed, 'close() did not complete the leader() stream');
clearTimeout(watchdog);
setTimeout(() => {
  console.error('the process is still alive 5 s after close()');
  process.exit(1);
}, 5_000).unref();
