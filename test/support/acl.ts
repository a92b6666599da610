/** An agent with ACLs on and default deny, and a leader on a key, written with the management token. */
import { type ConsulAgent, startConsulAgent } from '../../scripts/consul-agent.js';
import { acquire, consulClient, createSession } from './contender.js';
import { delay } from './recorder.js';

export async function startAclAgent(managementToken: string): Promise<ConsulAgent> {
  return startConsulAgent({
    hcl: `acl {\n enabled = true\n default_policy = "deny"\n tokens {\n master = "${managementToken}"\n }\n}\n`,
  });
}

/** Creates a session named `name` and acquires `key` with `value`, retrying while the token is not usable yet. */
export async function electWhenReady(
  agent: ConsulAgent,
  managementToken: string,
  key: string,
  name: string,
  value: string,
): Promise<string> {
  const writer = consulClient(agent.address, managementToken);
  // The management token may need a moment after the Raft leader is elected.
  for (let i = 0; ; i += 1) {
    try {
      const session = await createSession(writer, { name });
      if (await acquire(writer, key, session, value)) return session;
      throw new Error(`could not acquire ${key}`);
    } catch (error) {
      if (i > 50) throw error;
      await delay(200);
    }
  }
}
