// Type-checked (not run) under three configurations: tsconfig.nodenext.json,
// tsconfig.bundler.json and tsconfig.commonjs.json. No top-level await, so that the
// same file is valid as an ES module and as CommonJS.
import { z } from 'zod';
import { type Observable, map } from 'rxjs';
import {
  type Leader,
  type LeaderDiscovery,
  createLeaderDiscovery,
  isLeaderDiscoveryError,
} from '@consul-leader/discovery';

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
  // The app's own rxjs operators on the SDK's observable: one rxjs copy.
  return leader$.pipe(map((leader) => leader?.node.host ?? null));
}

export async function once(discovery: LeaderDiscovery): Promise<string | null> {
  try {
    const now: Leader<Node> | null = await discovery.current('service/db/leader', {
      schema: Node,
      timeout: '2s',
    });
    return now === null ? null : now.node.host;
  } catch (error) {
    if (isLeaderDiscoveryError(error)) return error.code;
    throw error;
  }
}

follow(createLeaderDiscovery({ consul: { host: '127.0.0.1', port: 8500 } }));
