// @consul-leader/types's schemas composed with the app's own zod/v4 (zod 3.25 ships it):
// a server relays LeaderStates as JSON, a client validates them.
import { z } from 'zod/v4';
import { type LeaderState, bigintReplacer, leaderStateSchema } from '@consul-leader/types';

const Node = z.object({ host: z.string(), port: z.number().int() });
const Message = z.object({ sentAt: z.string(), state: leaderStateSchema(Node) });

export function read(json: string): string | null {
  const { state } = Message.parse(JSON.parse(json));
  if (state.status !== 'leader') return null;
  const host: string = state.leader.node.host;
  const index: bigint = state.leader.lockIndex;
  // @ts-expect-error `nope` is not in the schema's output
  void state.leader.node.nope;
  void index;
  return host;
}

export function write(state: LeaderState<z.output<typeof Node>>): string {
  return JSON.stringify({ sentAt: new Date().toISOString(), state }, bigintReplacer);
}
