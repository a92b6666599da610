// Run by scripts/consumer-test.sh against its Consul agent (CONSUL_ADDR), on several Node
// versions, in undici7-http and (a copy) in undici8-http. On a key of its own:
//   1. a node:http backend in this process; a session of its own acquires the key with
//      {"host":"127.0.0.1","port":<the backend's port>};
//   2. leaderDispatcher() on discovery.follow(key): undici's fetch and request, and Node's
//      global fetch (Node's bundled undici), reach the backend;
//   3. createLeaderProxy() served by node:http forwards a request to it; leaderHealth()
//      answers 200 with the leader;
//   4. on a vacant key, a dispatcher with waitForLeader 0 fails with NO_LEADER: a
//      NoLeaderError from request, a TypeError with it as cause from fetch;
//   5. everything closed, the process exits by itself.
/* global fetch, URL */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { clearTimeout, setTimeout } from 'node:timers';
import { fetch as undiciFetch, request } from 'undici';
import { z } from 'zod';
import { createLeaderDiscovery, isLeaderDiscoveryError } from '@consul-leader/discovery';
import {
  NoLeaderError,
  createLeaderProxy,
  leaderDispatcher,
  leaderHealth,
} from '@consul-leader/discovery/http';

const [consulHost, consulPort] = process.env.CONSUL_ADDR.split(':');
const api = `http://${consulHost}:${consulPort}/v1`;
const run = `consumer-test/http/${process.versions.node}-${process.pid}-${Date.now()}`;
const key = `${run}/leader`;
const vacantKey = `${run}/vacant`;
const watchdog = setTimeout(() => {
  console.error('timed out after 30 s');
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

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}
async function closeServer(server) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

// 1. the backend (answers what it received) and the key it leads
const received = [];
const backend = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const seen = { method: req.method, url: req.url, headers: req.headers, body };
    received.push(seen);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
  });
});
const backendPort = await listen(backend);
const { ID: session } = await put('/session/create', { Name: 'consumer-http', LockDelay: '0s' });
assert.equal(await put(`/kv/${key}?acquire=${session}`, { host: '127.0.0.1', port: backendPort }), true);

const Node = z.object({ host: z.string(), port: z.number().int() });
const origin = (leader) => `http://${leader.node.host}:${leader.node.port}`;
const discovery = createLeaderDiscovery({ consul: { host: consulHost, port: Number(consulPort) } });
const handle = discovery.follow(key, { schema: Node });
const first = await handle.ready({ timeout: '5s' });
assert.deepEqual(first?.node, { host: '127.0.0.1', port: backendPort }, 'the handle sees no leader');

// 2. the dispatcher, through undici's fetch and request and Node's global fetch
const dispatcher = leaderDispatcher(handle, { origin });
const viaFetch = await undiciFetch('http://leader.invalid/orders/42?x=1', {
  method: 'POST',
  body: 'hello',
  dispatcher,
});
assert.equal(viaFetch.status, 200);
const echoed = await viaFetch.json();
assert.deepEqual([echoed.method, echoed.url, echoed.body], ['POST', '/orders/42?x=1', 'hello']);
assert.equal(echoed.headers.host, `127.0.0.1:${backendPort}`, "Host is not the leader's origin");

const viaRequest = await request('http://leader.invalid/b', { dispatcher });
assert.equal(viaRequest.statusCode, 200);
assert.equal((await viaRequest.body.json()).url, '/b');

const viaGlobal = await fetch('http://leader.invalid/c', { dispatcher });
assert.equal(viaGlobal.status, 200);
assert.equal((await viaGlobal.json()).url, '/c');

// 3. the proxy and the health endpoint, served by node:http
const proxy = createLeaderProxy(handle, { origin });
const gateway = http.createServer(proxy).on('upgrade', proxy.upgrade);
const gatewayPort = await listen(gateway);
const viaProxy = await undiciFetch(`http://127.0.0.1:${gatewayPort}/d?y=2`, {
  method: 'PUT',
  body: 'via proxy',
});
assert.equal(viaProxy.status, 200);
const proxied = await viaProxy.json();
assert.deepEqual([proxied.method, proxied.url, proxied.body], ['PUT', '/d?y=2', 'via proxy']);
assert.equal(proxied.headers['x-forwarded-host'], `127.0.0.1:${gatewayPort}`);
assert.equal(received.length, 4, `the backend received ${received.length} requests, not 4`);

const health = http.createServer(leaderHealth(handle));
const healthPort = await listen(health);
const healthRes = await undiciFetch(`http://127.0.0.1:${healthPort}/`);
const healthBody = await healthRes.json();
assert.equal(healthRes.status, 200);
assert.equal(healthBody.status, 'leader');
assert.equal(healthBody.leader.sessionId, session);

// 4. no leader: NO_LEADER at once with waitForLeader 0
const vacant = discovery.follow(vacantKey, { schema: Node });
assert.equal(await vacant.ready({ timeout: '5s' }), null);
const none = leaderDispatcher(vacant, { origin, waitForLeader: 0 });
const requestError = await request('http://leader.invalid/e', { dispatcher: none }).then(
  () => assert.fail('request() to a vacant key resolved'),
  (e) => e,
);
assert.ok(requestError instanceof NoLeaderError, `request() rejected with ${requestError}`);
assert.ok(isLeaderDiscoveryError(requestError), "NoLeaderError is not the main entry's LeaderDiscoveryError");
assert.equal(requestError.code, 'NO_LEADER');
const fetchError = await undiciFetch('http://leader.invalid/f', { dispatcher: none }).then(
  () => assert.fail('fetch() to a vacant key resolved'),
  (e) => e,
);
assert.ok(fetchError instanceof TypeError, `fetch() rejected with ${fetchError}`);
assert.equal(fetchError.cause?.code, 'NO_LEADER', `fetch()'s cause: ${fetchError.cause}`);

// 5. close everything
await Promise.all([proxy.close(), dispatcher.close(), none.close()]);
handle.close();
vacant.close();
discovery.close();
await Promise.all([closeServer(gateway), closeServer(health), closeServer(backend)]);
await put(`/session/destroy/${session}`);
clearTimeout(watchdog);
setTimeout(() => {
  console.error('the process is still alive 5 s after closing everything');
  process.exit(1);
}, 5_000).unref();

const undiciVersion = JSON.parse(
  readFileSync(new URL('node_modules/undici/package.json', `file://${process.cwd()}/`), 'utf8'),
).version;
console.log(
  `Node ${process.versions.node} (its fetch: undici ${process.versions.undici}), undici ${undiciVersion}: ` +
    `fetch, request, global fetch and the proxy reached the leader; a vacant key: ${requestError.code}`,
);
