import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of a real server that delivers its answers at a fixed rate. */
export interface ThrottledProxy {
  port: number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long a client connection stays open after its server connection closed and everything was
 * delivered: longer than an HTTP client keeps an idle socket (2.5 s for @clickhouse/client), so a
 * client that got its whole answer drops the socket itself, and one still waiting for an answer the
 * server cut short sees the connection end.
 */
const CLIENT_LINGER_MS = 5_000;

/**
 * Forwards 127.0.0.1:<port> to `target`, sending what the server answers at `bytesPerSecond`
 * (requests go through at full speed): a slow link to a real store, so a test can make a backup
 * last as long as a big organization's does without gigabytes of data.
 *
 * The server sees its answer sent as soon as it fits in the socket buffers, long before the client
 * has it, so it closes a keep-alive connection as idle (ClickHouse after 3 s) while the proxy is still
 * delivering. Passing that close on would end the client's socket just after the answer's last byte,
 * when the client may already have sent its next request on it: "socket hang up", at the same point
 * of every attempt. So the client connection outlives its server connection: a request that comes
 * after the server closed goes to a new server connection, as it would have on an unthrottled link.
 */
export async function startThrottledProxy(
  target: { host: string; port: number },
  bytesPerSecond: number,
): Promise<ThrottledProxy> {
  const sockets = new Set<Socket>();
  // 10 slices a second, so the rate is smooth at any chunk size the server sends.
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  const server: Server = createServer((client) => {
    sockets.add(client);
    let upstream: Socket | undefined;
    let linger: NodeJS.Timeout | undefined;
    // Every answer is delivered in order, those of a closed server connection first.
    let chain = Promise.resolve();
    const closeAll = () => {
      clearTimeout(linger);
      sockets.delete(client);
      client.destroy();
      if (upstream) {
        sockets.delete(upstream);
        upstream.destroy();
      }
    };
    const openUpstream = (): Socket => {
      const socket = connect(target.port, target.host);
      sockets.add(socket);
      // A broken server connection breaks the client's too, as it would without the proxy.
      socket.on('error', closeAll);
      socket.on('data', (chunk: Buffer) => {
        socket.pause();
        chain = chain.then(async () => {
          for (let at = 0; at < chunk.length && !client.destroyed; at += slice) {
            const piece = chunk.subarray(at, at + slice);
            client.write(piece);
            await sleep((piece.length / bytesPerSecond) * 1000);
          }
          socket.resume();
        });
      });
      socket.on('close', () => {
        sockets.delete(socket);
        if (upstream !== socket) return;
        upstream = undefined;
        void chain.then(() => {
          if (upstream === undefined && !client.destroyed) linger = setTimeout(() => client.end(), CLIENT_LINGER_MS);
        });
      });
      return socket;
    };
    client.on('data', (chunk: Buffer) => {
      clearTimeout(linger);
      upstream ??= openUpstream();
      upstream.write(chunk);
    });
    client.on('end', () => upstream?.end());
    client.on('error', closeAll).on('close', closeAll);
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
