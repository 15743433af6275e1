/** The SSLRequest both the stall watch and `keel diagnose` send, against local TCP servers. */
import net from 'node:net';
import { sendSslRequest } from '../../../src/db/ssl-request';

type Behaviour = 'S' | 'N' | 'close' | 'silent';

async function server(behaviour: Behaviour) {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      received.push(d);
      if (behaviour === 'S' || behaviour === 'N') s.write(behaviour);
      else if (behaviour === 'close') s.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    target: { host: '127.0.0.1', port },
    received,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

test.each([
  ['S', { kind: 'answered', tls: true }],
  ['N', { kind: 'answered', tls: false }],
  ['close', { kind: 'closed' }],
] as const)('a server answering %s', async (behaviour, expected) => {
  const s = await server(behaviour);
  try {
    const r = await sendSslRequest(s.target, 5000);
    expect(r).toMatchObject(expected);
    // The 8 bytes of the protocol: length 8, code 80877103.
    expect(s.received[0]).toEqual(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  } finally {
    await s.close();
  }
});

test('a server that never answers is a timeout after the connect', async () => {
  const s = await server('silent');
  try {
    expect(await sendSslRequest(s.target, 100)).toEqual({ kind: 'timeout', connected: true });
  } finally {
    await s.close();
  }
});

test('a refused port is an error carrying its code', async () => {
  const s = await server('silent');
  const { target } = s;
  await s.close();
  const r = await sendSslRequest(target, 5000);
  expect(r.kind).toBe('error');
  expect(r.kind === 'error' && r.error.code).toBe('ECONNREFUSED');
});
