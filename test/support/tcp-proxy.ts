/**
 * A TCP pass-through in front of an agent, for what an HTTP proxy cannot see
 * into (TLS, HTTP/2): it counts connections, can cut them all, and can hold back
 * what the agent answers (so a client's view of the agent lags on purpose).
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  accepted(): number;
  open(): number;
  /** Destroys every connection, both sides. */
  cut(): void;
  /** From now on the agent's bytes (and its closing) are kept back, in order, on every connection... */
  hold(): void;
  /** ...and now passed on. */
  release(): void;
  close(): Promise<void>;
}

/** Listens on `host` (for TLS, the agent's own address: its certificate names it), another port. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  let accepted = 0;
  let holding = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  // Nagle's algorithm off on both sides: with it, the tail of a relayed chunk waits for the
  // ACK of the one before (delayed up to 40 ms on Linux), once per HTTP/2 flow-control window.
  const server = net.createServer({ noDelay: true }, (client) => {
    accepted += 1;
    const upstream = net.connect({ port, host, noDelay: true });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    // Held: unpiped, the agent's bytes wait in the paused socket (its end too, until they are read).
    if (!holding) upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => pairs.size,
    cut: () => {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
    },
    hold: () => {
      holding = true;
      for (const [client, upstream] of pairs) upstream.unpipe(client);
    },
    release: () => {
      if (!holding) return;
      holding = false;
      for (const [client, upstream] of pairs) upstream.pipe(client);
    },
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
