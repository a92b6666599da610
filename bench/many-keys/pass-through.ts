/**
 * A TCP pass-through in front of an HTTPS agent that counts the connections
 * it accepts (it cannot see the requests inside TLS), with Nagle's algorithm
 * off on both of its sockets. test/support/tcp-proxy.ts leaves it on, which
 * is fine where time does not matter; on a latency path it is not: the tail
 * of a relayed chunk waits for the ACK of the previous one, which the other
 * side delays (up to 40 ms on Linux), and an HTTP/2 answer larger than the
 * client's flow-control window pays that once per window.
 */
import net from 'node:net';

export interface PassThrough {
  readonly port: number;
  /** Connections accepted since it started. */
  accepted(): number;
  /** Connections open now. */
  open(): number;
  close(): Promise<void>;
}

/** Listens on `host` (the agent's own address: its certificate names it), another port. */
export async function startPassThrough(host: string, port: number): Promise<PassThrough> {
  let accepted = 0;
  const pairs = new Set<readonly [net.Socket, net.Socket]>();
  const server = net.createServer({ noDelay: true }, (client) => {
    accepted += 1;
    const upstream = net.connect({ port, host, noDelay: true });
    const pair = [client, upstream] as const;
    pairs.add(pair);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => pairs.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const [client, upstream] of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
