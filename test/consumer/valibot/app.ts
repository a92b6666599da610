// Type-checked under module nodenext: a valibot schema through Standard Schema.
import * as v from 'valibot';
import { type LeaderDiscovery, createLeaderDiscovery } from '@consul-leader/discovery';

const Node = v.object({ host: v.string(), port: v.pipe(v.number(), v.integer()) });
type Node = v.InferOutput<typeof Node>;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

export function follow(discovery: LeaderDiscovery): void {
  discovery.leader('service/db/leader', { schema: Node }).subscribe((leader) => {
    if (leader === null) return;
    const host: string = leader.node.host;
    const port: number = leader.node.port;
    assertType<Equal<typeof leader.node, Node>>();
    // @ts-expect-error `nope` is not in the schema's output
    void leader.node.nope;
    void [host, port];
  });
}

export async function once(discovery: LeaderDiscovery): Promise<string | undefined> {
  const leader = await discovery.current('service/db/leader', { schema: Node });
  return leader?.node.host;
}

follow(createLeaderDiscovery());
