// Type-checked under module nodenext: a zod 3 classic schema through Standard Schema.
import { z } from 'zod';
import { type Observable, map } from 'rxjs';
import { type Leader, type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';

const Node = z.object({ host: z.string(), port: z.number().int() });
type Node = z.output<typeof Node>;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export function follow(discovery: LeaderDiscovery): Observable<string | null> {
  const leader$ = discovery.leader('service/db/leader', { schema: Node });
  leader$.subscribe((leader) => {
    if (leader === null) return;
    const host: string = leader.node.host;
    const port: number = leader.node.port;
    assertType<Equal<typeof leader.node, Node>>();
    // @ts-expect-error `nope` is not in the schema's output
    void leader.node.nope;
    void [host, port];
  });
  return leader$.pipe(map((leader) => leader?.node.host ?? null));
}

export async function once(discovery: LeaderDiscovery): Promise<Leader<Node> | null> {
  return discovery.current('service/db/leader', { schema: Node, timeout: '2s' });
}

follow(createLeaderDiscovery());
