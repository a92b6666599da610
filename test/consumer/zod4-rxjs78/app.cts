// A CommonJS file of a TypeScript project under module nodenext: its imports compile to
// require() of the ESM-only SDK (TypeScript 5.8+ allows that under nodenext, as Node
// 20.19+ and 22.12+ do).
import { z } from 'zod';
import { type Observable, map } from 'rxjs';
import { type LeaderDiscovery } from '@consul-leader/discovery';

const Node = z.object({ host: z.string(), port: z.number().int() });

export function follow(discovery: LeaderDiscovery): Observable<string | null> {
  const leader$ = discovery.leader('service/db/leader', { schema: Node });
  leader$.subscribe((leader) => {
    if (leader === null) return;
    const host: string = leader.node.host;
    // @ts-expect-error `nope` is not in the schema's output
    void leader.node.nope;
    void host;
  });
  return leader$.pipe(map((leader) => leader?.node.host ?? null));
}
