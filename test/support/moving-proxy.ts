/**
 * One address in front of whichever server is the primary, as Railway's HAProxy (or a cloud's
 * DNS name) is: `point()` sends new connections to another server and drops the open ones, as
 * HAProxy does on a failover; `point(null)` refuses new connections (no primary answers).
 */
import net from 'node:net';

export interface MovingProxy {
  readonly port: number;
  /** `sourceUrl` with its host and port replaced by the proxy's. */
  url(sourceUrl: string): string;
  /** New connections go to `port` (null: reset at once); every open pair is reset. */
  point(port: number | null): void;
  /** Destroys every socket and closes the listener. Idempotent. */
  close(): Promise<void>;
}

export async function createMovingProxy(targetPort: number | null): Promise<MovingProxy> {
  let target = targetPort;
  const pairs = new Set<[net.Socket, net.Socket]>();
  let closing: Promise<void> | null = null;

  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (target === null || closing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: target, noDelay: true });
    upstream.on('error', () => undefined);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    // An error on one side (a refused upstream, a reset) resets the other, as a TCP proxy does.
    const drop = () => {
      pairs.delete(pair);
      if (!client.destroyed) client.resetAndDestroy();
      if (!upstream.destroyed) upstream.resetAndDestroy();
    };
    client.once('error', drop);
    upstream.once('error', drop);
    client.once('close', drop);
    upstream.once('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  const dropAll = () => {
    for (const [a, b] of [...pairs]) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    pairs.clear();
  };

  return {
    port,
    url(sourceUrl) {
      const u = new URL(sourceUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    point(next) {
      target = next;
      dropAll();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
