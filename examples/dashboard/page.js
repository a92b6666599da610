/* global document, EventSource, setInterval */
/**
 * The dashboard page: follows /events (serveLeaderEvents) and keeps a table of
 * every leader key under the prefix. Plain browser ESM: `zod` and
 * `@consul-leader/types` come through the page's import map, so every payload is
 * checked with the same schemas the SDK's types are made of.
 */
import { z } from 'zod';
import { ErrorInfoSchema, leaderStateSchema } from '@consul-leader/types';

const State = leaderStateSchema(z.unknown());
const Outage = ErrorInfoSchema.extend({
  attempt: z.number().int().positive(),
  retryInMs: z.number().nonnegative(),
});
const Snapshot = z.object({ prefix: z.string(), states: z.array(State), unreachable: Outage.nullable() });
const Removed = z.object({ key: z.string() });
const ConsulStatus = z.object({ unreachable: Outage.nullable() });

/** Changes kept per key. */
const HISTORY = 5;

/**
 * key -> { state, signature, since, exact, history: [{ status, text, at }] }.
 * `since`: when the key's state last changed; `exact` false when it was already so at connection.
 */
const rows = new Map();
let consulOutage = null;
let consulOutageSince = 0;
let serverDown = false;
let rejected = 0;

const $ = (id) => document.getElementById(id);

/** The state a row shows details of: an unreachable key shows its last known state. */
const settled = (state) => (state.status === 'unreachable' ? state.lastKnown : state);

/** What counts as a change: another status, another session, another reason. */
function signature(state) {
  switch (state.status) {
    case 'leader':
      return `leader:${state.leader.session.id}`;
    case 'vacant':
      return `vacant:${state.reason}`;
    case 'invalid':
      return `invalid:${state.session.id}`;
    default:
      return 'unreachable';
  }
}

/** A short description for the history. */
function describe(state) {
  switch (state.status) {
    case 'leader':
      return `leader ${state.leader.session.node}/${state.leader.session.id.slice(0, 8)}`;
    case 'vacant':
      return `vacant (${state.reason})`;
    case 'invalid':
      return `invalid ${state.error.code}`;
    default:
      return `unreachable ${state.error.code}`;
  }
}

function apply(state, now, atConnection) {
  const sig = signature(state);
  const row = rows.get(state.key);
  const entry = { status: state.status, text: describe(state), at: now };
  if (!row) {
    rows.set(state.key, { state, signature: sig, since: now, exact: !atConnection, history: [entry] });
    return;
  }
  row.state = state;
  if (row.signature === sig) return;
  row.signature = sig;
  row.since = now;
  row.exact = true;
  row.history.unshift(entry);
  row.history.length = Math.min(row.history.length, HISTORY);
}

function reject(event, error) {
  rejected += 1;
  const issues = error instanceof z.ZodError ? z.prettifyError(error) : String(error);
  $('rejected').textContent = `${rejected} payload(s) rejected by the schema; last (${event}): ${issues}`;
  console.warn('rejected', event, error);
}

/** Parses and validates an event's JSON; undefined (and reported) when it does not pass. */
function read(event, schema, message) {
  try {
    return schema.parse(JSON.parse(message.data));
  } catch (error) {
    reject(event, error);
    return undefined;
  }
}

// ---- rendering

const clock = (ms) => new Date(ms).toTimeString().slice(0, 8);

function ago(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

function descriptor(node) {
  const text = node === null ? '(empty)' : JSON.stringify(node);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

function cell(className, text, detail) {
  const td = document.createElement('td');
  td.className = className;
  if (typeof text === 'string') td.textContent = text;
  else td.append(text);
  if (detail) {
    const div = document.createElement('div');
    div.className = 'detail';
    div.textContent = detail;
    td.append(div);
  }
  return td;
}

function badge(status) {
  const span = document.createElement('span');
  span.className = `status ${status}`;
  span.textContent = status;
  return span;
}

function sinceText(row, now) {
  return `${row.exact ? '' : '>'}${ago(now - row.since)}`;
}

function renderRow(key, row, now) {
  const { state } = row;
  const shown = settled(state);
  const tr = document.createElement('tr');
  tr.dataset.key = key;
  tr.dataset.status = state.status;

  let leader = '—';
  let leaderDetail = '';
  let session = null;
  if (shown?.status === 'leader') {
    leader = descriptor(shown.leader.node);
    session = shown.leader.session;
  } else if (shown?.status === 'invalid') {
    leader = `raw=${shown.raw.length > 80 ? `${shown.raw.slice(0, 79)}…` : shown.raw}`;
    leaderDetail = shown.error.message;
    session = shown.session;
  } else if (shown?.status === 'vacant') {
    leaderDetail = shown.reason;
  }
  if (state.status === 'unreachable') {
    // The retry count is the outage's: the banner shows it (one `consul` event per retry).
    leaderDetail = `last known${shown ? ` (${shown.status})` : ': none'}; ${state.error.code}`;
  }

  tr.append(
    cell('key mono', key),
    cell('state', badge(state.status)),
    cell('leader mono', leader, leaderDetail),
    cell('node', session ? session.node : '—'),
    cell('session mono', session ? session.id.slice(0, 8) : '—', session ? session.name : ''),
    cell('since', sinceText(row, now)),
  );
  const history = document.createElement('div');
  history.className = 'history';
  for (const entry of row.history) {
    const span = document.createElement('span');
    span.className = entry.status;
    span.dataset.status = entry.status;
    span.textContent = `${clock(entry.at)} ${entry.text}`;
    history.append(span);
  }
  tr.append(cell('history', history));
  return tr;
}

function render() {
  const now = Date.now();
  const tbody = $('rows');
  const keys = [...rows.keys()].sort();
  if (keys.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    tr.append(cell('', consulOutage ? 'no key known yet' : 'no leader key under this prefix'));
    tr.firstChild.colSpan = 7;
    tbody.replaceChildren(tr);
  } else {
    tbody.replaceChildren(...keys.map((key) => renderRow(key, rows.get(key), now)));
  }
  renderBanner();
}

function renderBanner() {
  const banner = $('banner');
  let text = '';
  if (serverDown)
    text = 'The dashboard server cannot be reached: reconnecting… (the table shows the last known states)';
  else if (consulOutage) {
    const { code, message, status, attempt } = consulOutage;
    text =
      `Consul unreachable since ${clock(consulOutageSince)}: ${code}${status ? ` ${status}` : ''}: ${message} ` +
      `(attempt ${attempt}; the SDK retries). The table shows the last known states.`;
  }
  banner.textContent = text;
  banner.classList.toggle('shown', text !== '');
  $('connection').textContent = serverDown
    ? 'disconnected'
    : `live: ${rows.size} key(s), Consul ${consulOutage ? 'unreachable' : 'answering'}`;
}

function setOutage(outage) {
  if (outage && !consulOutage) consulOutageSince = Date.now();
  consulOutage = outage;
}

// ---- events

const source = new EventSource('/events');

source.addEventListener('open', () => {
  serverDown = false;
  renderBanner();
});
source.addEventListener('error', () => {
  serverDown = source.readyState !== EventSource.OPEN;
  renderBanner();
});

source.addEventListener('snapshot', (message) => {
  const snapshot = read('snapshot', Snapshot, message);
  if (!snapshot) return;
  const now = Date.now();
  $('prefix').textContent = snapshot.prefix;
  // A reconnection starts with a snapshot too: keys absent from it are gone.
  const present = new Set(snapshot.states.map((s) => s.key));
  for (const key of rows.keys()) if (!present.has(key)) rows.delete(key);
  for (const state of snapshot.states) apply(state, now, true);
  setOutage(snapshot.unreachable);
  serverDown = false;
  render();
});

source.addEventListener('state', (message) => {
  const state = read('state', State, message);
  if (!state) return;
  apply(state, Date.now(), false);
  render();
});

source.addEventListener('removed', (message) => {
  const removed = read('removed', Removed, message);
  if (!removed) return;
  rows.delete(removed.key);
  render();
});

source.addEventListener('consul', (message) => {
  const status = read('consul', ConsulStatus, message);
  if (!status) return;
  setOutage(status.unreachable);
  render();
});

// "Since" ticks.
setInterval(() => {
  const now = Date.now();
  for (const tr of $('rows').querySelectorAll('tr[data-key]')) {
    const row = rows.get(tr.dataset.key);
    if (row) tr.querySelector('td.since').textContent = sinceText(row, now);
  }
}, 1000);
