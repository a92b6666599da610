// Type-checked under module commonjs (node10 resolution): the SDK's observables with the
// app's rxjs 7.5.0 operators, and a zod 4.0 schema. rxjs before 7.5.5 has no "types"
// condition in its exports, so under nodenext, node16 or bundler TypeScript finds no types
// for rxjs at all (TS7016, on the app's own `import ... from 'rxjs'` too).
import { z } from 'zod';
import { type Observable, filter, firstValueFrom, map } from 'rxjs';
import { type Leader, type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';

const Node = z.object({ host: z.string(), port: z.number().int() });
type Node = z.output<typeof Node>;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export function hosts(discovery: LeaderDiscovery): Observable<string | null> {
  const leader$ = discovery.leader('service/db/leader', { schema: Node });
  const asObservable: Observable<Leader<Node> | null> = leader$;
  void asObservable;
  return leader$.pipe(
    map((leader) => {
      if (leader === null) return null;
      assertType<Equal<typeof leader.node, Node>>();
      // @ts-expect-error `nope` is not in the schema's output
      void leader.node.nope;
      return leader.node.host;
    }),
  );
}

export function firstLeader(discovery: LeaderDiscovery): Promise<Leader<Node>> {
  return firstValueFrom(
    discovery
      .leader('service/db/leader', { schema: Node })
      .pipe(filter((leader): leader is Leader<Node> => leader !== null)),
  );
}

hosts(createLeaderDiscovery());
