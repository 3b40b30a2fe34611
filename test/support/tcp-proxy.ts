import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'refuse' | 'hang';

/**
 * A TCP proxy between the server and PostgreSQL, to make the database unreachable (connections refused, open
 * ones cut) or hanging (connections accepted, nothing ever answered) without touching the real server.
 */
export class TcpProxy {
  #server: Server | undefined;
  #mode: ProxyMode = 'forward';
  readonly #sockets = new Set<Socket>();
  #losing: { marker: string; lost: () => void } | undefined;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async to(url: string): Promise<TcpProxy> {
    const target = new URL(url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.#listen(0);
    return proxy;
  }

  /** `url` with its host and port replaced by this proxy's. */
  urlFor(url: string): string {
    const rewritten = new URL(url);
    rewritten.hostname = '127.0.0.1';
    rewritten.port = String(this.port);
    return rewritten.toString();
  }

  async setMode(mode: ProxyMode): Promise<void> {
    if (mode === this.#mode) return;
    const previous = this.#mode;
    this.#mode = mode;
    if (mode === 'refuse') {
      this.#destroyAll();
      await this.#close();
    } else {
      if (mode === 'hang') {
        for (const socket of this.#sockets) {
          socket.unpipe();
          socket.pause();
        }
      }
      if (previous === 'hang') this.#destroyAll();
      if (previous === 'refuse') await this.#listen(this.port);
    }
  }

  /**
   * The next message from the server that contains `marker` reaches PostgreSQL, which runs it, but its answer is
   * lost: the server's connection is cut right after it. Resolves once that happened.
   */
  loseAnswerTo(marker: string): Promise<void> {
    return new Promise((lost) => (this.#losing = { marker, lost }));
  }

  async close(): Promise<void> {
    this.#destroyAll();
    await this.#close();
  }

  #destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  #listen(port: number): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  #accept(client: Socket): void {
    this.#sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => this.#sockets.delete(client));
    if (this.#mode === 'hang') {
      client.pause();
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    this.#sockets.add(upstream);
    let answerLost = false;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      this.#sockets.delete(upstream);
      client.destroy();
    });
    // Once an answer is lost, the way to PostgreSQL is closed after what was sent (not reset), so that it runs it.
    client.on('close', () => (answerLost ? upstream.end() : upstream.destroy()));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      const losing = this.#losing;
      if (!losing || !chunk.includes(losing.marker)) return;
      this.#losing = undefined;
      answerLost = true;
      upstream.unpipe(client);
      upstream.resume();
      client.destroy();
      losing.lost();
    });
  }
}
