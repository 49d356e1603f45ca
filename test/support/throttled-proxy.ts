import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of a real server that delivers its answers at a fixed rate. */
export interface ThrottledProxy {
  port: number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Forwards 127.0.0.1:<port> to `target`, sending what the server answers at `bytesPerSecond`
 * (requests go through at full speed): a slow link to a real store, so a test can make a backup
 * last as long as a big organization's does without gigabytes of data.
 */
export async function startThrottledProxy(
  target: { host: string; port: number },
  bytesPerSecond: number,
): Promise<ThrottledProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    // The server closing its side (ClickHouse drops an idle keep-alive connection after 3 s, and
    // an answer held back by the throttle looks idle to it) must not cut what is still being
    // delivered: the client side is ended once the throttled chain has written everything.
    upstream.on('error', forget);
    client.pipe(upstream);
    // 10 slices a second, so the rate is smooth at any chunk size the server sends.
    const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
    let chain = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause();
      chain = chain.then(async () => {
        for (let at = 0; at < chunk.length && !client.destroyed; at += slice) {
          const piece = chunk.subarray(at, at + slice);
          client.write(piece);
          await sleep((piece.length / bytesPerSecond) * 1000);
        }
        upstream.resume();
      });
    });
    upstream.on('close', () => {
      void chain.then(() => client.end());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
