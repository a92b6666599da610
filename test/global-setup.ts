/** Finds or fetches the `consul` binary once, before test workers start agents. */
import { consulBinary } from '../scripts/consul-agent.js';

export default function setup(): void {
  process.env.CONSUL_BIN = consulBinary();
}
