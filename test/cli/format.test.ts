/** The CLI's lines, JSON, tables and live view, and PrefixView: pure functions, no agent. */
import { describe, it, expect } from 'vitest';
import type { ErrorInfo, LeaderState, SettledLeaderState } from '@consul-leader/types';
import {
  jsonReplacer,
  stateJson,
  stateJsonLine,
  stateLine,
  statesJson,
  writeState,
} from '../../packages/discovery/src/cli/format.js';
import { PrefixView } from '../../packages/discovery/src/cli/prefix-view.js';
import {
  type TableRow,
  cutVisible,
  formatAge,
  renderTable,
  renderWatchScreen,
} from '../../packages/discovery/src/cli/table.js';
import { sessionInfo } from '../../packages/discovery/src/test-fixtures.js';

type State = LeaderState<unknown, ErrorInfo>;
type Settled = SettledLeaderState<unknown, ErrorInfo>;

describe('consul-leader CLI formatting', () => {
  describe('format (pure)', () => {
    const time = new Date('2026-11-24T23:50:01.123Z');
    const consul = { index: 18446744073709551615n, lastContactMs: 0, knownLeader: true };

    it('writes bigints as decimal strings and errors as { code, message, status }', () => {
      const error = Object.assign(new Error('denied'), { code: 'PERMISSION_DENIED', status: 403 });
      const line = stateJsonLine(
        { status: 'unreachable', key: 'k', error, attempt: 2, retryInMs: 500, lastKnown: null },
        time,
      );
      expect(JSON.parse(line)).toEqual({
        time: '2026-11-24T23:50:01.123Z',
        status: 'unreachable',
        key: 'k',
        error: { code: 'PERMISSION_DENIED', message: 'denied', status: 403 },
        attempt: 2,
        retryInMs: 500,
        lastKnown: null,
      });
      const vacant = stateJsonLine({ status: 'vacant', key: 'k', reason: 'no-session', consul }, time);
      expect(JSON.parse(vacant)).toMatchObject({ consul: { index: '18446744073709551615' } });
    });

    it('human lines show the reason, colour only on request, and no raw control characters', () => {
      const vacant = { status: 'vacant', key: 'k\u001b[2J', reason: 'session-gone', consul } as const;
      expect(stateLine(vacant, time)).toBe(
        '2026-11-24T23:50:01.123Z vacant  k\\u001b[2J  reason=session-gone',
      );
      expect(stateLine(vacant, time, true)).toContain('\u001b[33mvacant\u001b[0m');
      const down = stateLine(
        {
          status: 'unreachable',
          key: 'k',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          attempt: 3,
          retryInMs: 2000,
          lastKnown: null,
        },
        time,
      );
      expect(down).toBe(
        '2026-11-24T23:50:01.123Z unreachable  k  CONSUL_UNREACHABLE: refused  attempt=3 retry-in=2000ms last-known=none',
      );
    });
  });

  describe('table (pure)', () => {
    const now = new Date('2026-11-24T23:50:01.123Z');
    const consul = { index: 42n, lastContactMs: 0, knownLeader: true };
    const session = {
      id: '8c1e2f3a-1111-4000-8000-000000000001',
      name: 'db',
      node: 'db-host-1',
      checks: ['serfHealth'],
      behavior: 'release',
      ttl: '',
      ttlMs: null,
      lockDelayMs: 15_000,
      createIndex: 5n,
      modifyIndex: 5n,
    } as const;
    const leader = (key: string, node: unknown, meta = consul): State => ({
      status: 'leader',
      key,
      leader: { key, node, session, lockIndex: 1n, modifyIndex: 9n, createIndex: 9n, flags: 0n },
      consul: meta,
    });
    const vacant = (key: string, meta = consul): State => ({
      status: 'vacant',
      key,
      reason: 'no-session',
      consul: meta,
    });
    const invalid: State = {
      status: 'invalid',
      key: 'svc/c',
      entry: { key: 'svc/c', lockIndex: 1n, modifyIndex: 10n, createIndex: 10n, flags: 0n },
      session,
      raw: 'not json',
      error: { code: 'INVALID_DESCRIPTOR', message: 'value cannot be decoded: bad' },
      issues: [],
      consul,
    };
    const rows: TableRow[] = [
      { state: leader('svc/a', { host: 'db-1', port: 5432 }) },
      { state: vacant('svc/b') },
      { state: invalid },
    ];

    it('without a width: values in full, columns aligned, no trailing spaces', () => {
      expect(renderTable(rows, { now })).toEqual([
        'KEY    STATE    LEADER                                         CONSUL NODE  SESSION',
        'svc/a  leader   {"host":"db-1","port":5432}                    db-host-1    8c1e2f3a',
        'svc/b  vacant   (no-session)                                   -            -',
        'svc/c  invalid  raw="not json" (value cannot be decoded: bad)  db-host-1    8c1e2f3a',
      ]);
      expect(renderTable([], { now })).toEqual(['KEY  STATE  LEADER  CONSUL NODE  SESSION']);
    });

    it('with a width: the descriptor, then the start of the key, give up cells; no line is wider', () => {
      const long = [
        { state: leader('service/eu-west-1/payments/db/leader', { host: 'x'.repeat(80) }) },
        ...rows,
      ];
      for (const width of [100, 80, 60, 40]) {
        const lines = renderTable(long, { now, width });
        for (const line of lines) expect(Array.from(line).length).toBeLessThanOrEqual(width);
      }
      const [header, first] = renderTable(long, { now, width: 100 });
      expect(header).toMatch(/^KEY +STATE +LEADER +CONSUL NODE {2}SESSION$/);
      expect(first).toMatch(
        /^service\/eu-west-1\/payments\/db\/leader {2}leader {3}\{"host":"x+… {2}db-host-1 {4}8c1e2f3a$/,
      );
      expect(Array.from(first as string)).toHaveLength(100);
      const narrow = renderTable(long, { now, width: 60 })[1] as string;
      expect(narrow).toMatch(/^…\S*\/db\/leader {2}leader {2}/); // the end of the key stays
    });

    describe('a descriptor that cannot be written as JSON (writeState)', () => {
      // Deeper than any stack lets JSON.stringify go, in any test worker.
      const tooDeep = (): unknown => {
        let node: unknown = [];
        for (let i = 0; i < 100_000; i += 1) node = [node];
        return node;
      };
      const deep = leader('svc/deep', tooDeep());
      const nestedTooDeeply = /the descriptor cannot be written as JSON: it is nested too deeply/;

      it('shows the key as invalid, with the reason, in lines, JSON lines, JSON arrays and tables', () => {
        expect(stateLine(deep, now)).toMatch(
          /^\S+Z invalid {2}svc\/deep {2}INVALID_DESCRIPTOR: the descriptor cannot be written as JSON: it is nested too deeply .*session=8c1e2f3a-1111-4000-8000-000000000001 node=db-host-1$/,
        );
        expect(JSON.parse(stateJsonLine(deep, now))).toMatchObject({
          time: now.toISOString(),
          status: 'invalid',
          key: 'svc/deep',
          entry: { lockIndex: '1', modifyIndex: '9' },
          session: { id: session.id },
          error: { code: 'INVALID_DESCRIPTOR', message: expect.stringMatching(nestedTooDeeply) },
          issues: [{ code: 'unwritable', path: [] }],
          consul: { index: '42' },
        });
        const array = JSON.parse(statesJson([vacant('svc/a'), deep, invalid])) as State[];
        expect(array.map((s) => [s.key, s.status])).toEqual([
          ['svc/a', 'vacant'],
          ['svc/deep', 'invalid'],
          ['svc/c', 'invalid'],
        ]);
        const [, row, next] = renderTable([{ state: deep }, { state: vacant('svc/e') }], { now });
        expect(row).toMatch(/^svc\/deep {2}invalid {2}raw="" \(the descriptor cannot be written as JSON: /);
        expect(next).toMatch(/^svc\/e +vacant/);
        // Unreachable: what was last known of it.
        const down: State = {
          status: 'unreachable',
          key: 'svc/deep',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          attempt: 1,
          retryInMs: 250,
          lastKnown: deep as Settled,
        };
        expect(JSON.parse(stateJsonLine(down, now))).toMatchObject({
          status: 'unreachable',
          lastKnown: { status: 'invalid', issues: [{ code: 'unwritable' }] },
        });
        expect(renderTable([{ state: down }], { now })[1]).toMatch(/^svc\/deep {2}unreachable {2}raw="" \(/);
      });

      it('a descriptor that overflows where it is written, deeper in the stack, is invalid by the depth bound', () => {
        // 1,500 levels: JSON.stringify writes it from a shallow stack, but may not from a deep one.
        let nested: unknown = [];
        for (let i = 0; i < 1_500; i += 1) nested = [nested];
        const edge = leader('svc/edge', nested);
        const written = writeState(edge, (state) => {
          if (state.status === 'leader') throw new RangeError('Maximum call stack size exceeded');
          return state;
        });
        expect(written).toMatchObject({
          status: 'invalid',
          error: { message: expect.stringMatching(nestedTooDeeply) },
          issues: [{ code: 'unwritable' }],
        });
        // A shallow descriptor that fails to be written: not the descriptor's fault, not hidden.
        const shallow = leader('svc/shallow', { host: 'db-1' });
        expect(() =>
          writeState(shallow, () => {
            throw new RangeError('Maximum call stack size exceeded');
          }),
        ).toThrow(RangeError);
        // Any other failure is not the descriptor's: it is not hidden.
        expect(() =>
          writeState(vacant('svc/v'), () => {
            throw new Error('not a descriptor');
          }),
        ).toThrow('not a descriptor');
        expect(stateJson(shallow)).toBe(JSON.stringify(shallow, jsonReplacer));
      });
    });

    it('colours only the state, outside the padding; control characters are escaped', () => {
      const [, row] = renderTable([{ state: vacant('k\u001b[2J') }], { now, colour: true });
      expect(row).toBe('k\\u001b[2J  \u001b[33mvacant\u001b[0m  (no-session)  -            -');
    });

    it('SINCE: the age of the last change, ">" when unchanged since the watch started', () => {
      const lines = renderTable(
        [
          { state: vacant('a'), since: new Date(now.getTime() - 65_000), sinceAtLeast: true },
          { state: vacant('b'), since: new Date(now.getTime() - 12_400) },
        ],
        { now, since: true },
      );
      expect(lines.map((line) => line.split(/ {2,}/).at(-1))).toEqual(['SINCE', '>1m05s', '12s']);
    });

    it('formatAge and cutVisible', () => {
      expect([0, 59_999, 65_000, 3_780_000, 2 * 86_400_000 + 4 * 3_600_000].map(formatAge)).toEqual([
        '0s',
        '59s',
        '1m05s',
        '1h03m',
        '2d04h',
      ]);
      expect(cutVisible('abcdef', 6)).toBe('abcdef');
      expect(cutVisible('abcdef', 4)).toBe('abc…');
      expect(cutVisible('ab\u001b[31mcdef\u001b[0m', 4)).toBe('ab\u001b[31mc…\u001b[0m');
    });

    it('the live view: Consul status, the table, cut to the height with how many keys are hidden', () => {
      const many = Array.from({ length: 10 }, (_, i) => ({ state: vacant(`svc/${i}`), since: now }));
      const lines = renderWatchScreen('svc/', { kind: 'ok', meta: consul }, many, {
        now,
        width: 100,
        height: 8,
      });
      expect(lines).toHaveLength(8);
      expect(lines[0]).toBe('consul-leader watch --prefix svc/  2026-11-24T23:50:01.123Z  (Ctrl-C to quit)');
      expect(lines[1]).toBe('Consul: ok  |  10 keys: 10 vacant');
      expect(lines[3]).toMatch(/^KEY +STATE/);
      expect(lines.slice(4, 7).map((line) => line.split(' ')[0])).toEqual(['svc/0', 'svc/1', 'svc/2']);
      expect(lines[7]).toBe('… 7 more keys (a taller terminal, or --json, shows all)');

      const down = renderWatchScreen(
        'svc/',
        {
          kind: 'unreachable',
          error: { code: 'CONSUL_UNREACHABLE', message: 'refused' },
          since: new Date(now.getTime() - 12_000),
          attempt: 3,
          retryInMs: 2000,
        },
        [],
        { now, width: 100, height: 30 },
      );
      expect(down.slice(1, 3)).toEqual([
        'Consul: unreachable for 12s (attempt 3, next in 2000 ms)  |  0 keys',
        '  CONSUL_UNREACHABLE: refused',
      ]);
    });
  });

  describe('PrefixView (pure)', () => {
    const t = (s: number): Date => new Date(Date.UTC(2026, 10, 24, 23, 50, s));
    const meta = (index: bigint) => ({ index, lastContactMs: 0, knownLeader: true });
    const session = (id: string) => sessionInfo(id, { node: 'n' });
    const held = (key: string, id: string, index: bigint): Settled => ({
      status: 'leader',
      key,
      leader: {
        key,
        node: id,
        session: session(id),
        lockIndex: 1n,
        modifyIndex: index,
        createIndex: index,
        flags: 0n,
      },
      consul: meta(index),
    });
    const free = (key: string, index: bigint): Settled => ({
      status: 'vacant',
      key,
      reason: 'no-session',
      consul: meta(index),
    });
    const map = (...states: State[]): Map<string, State> => new Map(states.map((s) => [s.key, s]));
    const summary = (states: readonly State[]) => states.map((s) => `${s.key}:${s.status}`);

    it('reports changed keys, deleted keys as key-missing, outages on every key, and when states changed', () => {
      const view = new PrefixView(t(0));
      expect(view.status).toEqual({ kind: 'connecting' });
      const a = held('p/a', 's1', 10n);
      const b = free('p/b', 11n);
      expect(summary(view.read(map(b, a), t(1)))).toEqual(['p/a:leader', 'p/b:vacant']);
      expect(view.status).toEqual({ kind: 'ok', meta: meta(11n) });
      expect(view.rows().map((r) => [r.state.key, r.since, r.sinceAtLeast])).toEqual([
        ['p/a', t(0), true],
        ['p/b', t(0), true],
      ]);
      expect(view.read(map(a, b), t(2))).toEqual([]); // nothing new

      const b2 = held('p/b', 's2', 12n);
      expect(summary(view.read(map(a, b2), t(3)))).toEqual(['p/b:leader']);
      expect(view.rows()[1]).toMatchObject({ since: t(3), sinceAtLeast: false });

      // p/a deleted: key-missing, with the newest answer's headers the map has.
      const [missing] = view.read(map(b2), t(4));
      expect(missing).toEqual({ status: 'vacant', key: 'p/a', reason: 'key-missing', consul: meta(12n) });

      // An outage: the SDK lists the keys it knew; the deleted one is unreachable too.
      const error = { code: 'CONSUL_UNREACHABLE', message: 'refused' };
      const down = {
        status: 'unreachable',
        key: 'p/b',
        error,
        attempt: 2,
        retryInMs: 500,
        lastKnown: b2,
      } as const;
      const changed = view.outage(map(down), t(5));
      expect(changed).toEqual([
        { status: 'unreachable', key: 'p/a', error, attempt: 2, retryInMs: 500, lastKnown: missing },
        down,
      ]);
      expect(view.status).toEqual({ kind: 'unreachable', error, since: t(5), attempt: 2, retryInMs: 500 });
      expect(view.outage(map({ ...down, attempt: 3 }), t(6))).toHaveLength(2); // every attempt is new
      expect(view.status).toMatchObject({ since: t(5), attempt: 3 });
      expect(view.rows()[1]).toMatchObject({ since: t(3) }); // an outage does not change a key's state

      // Back, unchanged: the lines say so, but the keys' SINCE stays.
      expect(summary(view.read(map(b2), t(7)))).toEqual(['p/a:vacant', 'p/b:leader']);
      expect(view.rows().map((r) => r.since)).toEqual([t(4), t(3)]);

      // Every key deleted; then an outage the SDK shows as an empty map.
      expect(summary(view.read(map(), t(8)))).toEqual(['p/b:vacant']);
      view.outageWithoutKeys(error, t(9));
      expect(view.status).toEqual({
        kind: 'unreachable',
        error,
        since: t(9),
        attempt: null,
        retryInMs: null,
      });
      expect(view.read(map(), t(10))).toEqual([]);
      expect(view.status.kind).toBe('ok');
    });
  });
});
