import { randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { TASK_CHANGES, wsSession } from '../support/subscriptions.js';
import { createTask } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

/** How long a test waits for something the server must do (close a socket, answer) before it fails. */
const PATIENCE_MS = 10_000;

/** Whatever a test opened, closed after it whether it passed or not. */
const leftOpen: (() => void)[] = [];
afterEach(() => {
  for (const close of leftOpen.splice(0)) close();
});

/** Rejects with `what` unless `promise` settles within `ms`. */
function within<T>(promise: Promise<T>, what: string, ms = PATIENCE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

interface RawConnection {
  socket: Socket;
  /** Every byte the server sent so far. */
  received(): Buffer;
  /** Resolves when the socket is closed (by either side). */
  closed: Promise<void>;
}

/** A bare TCP connection to the server, once connected; it sends nothing unless told to. */
function rawConnection(serverUrl: string): Promise<RawConnection> {
  const { hostname, port } = new URL(serverUrl);
  const socket = connect({ host: hostname, port: Number(port) });
  leftOpen.push(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // A reset is one way for the server to close it.
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed }));
    socket.once('error', reject);
  });
}

const closedByTheServer = (connection: RawConnection) => within(connection.closed, 'closed by the server');

/** The first 14 bytes of a masked binary frame announcing a payload of 1 GiB: FIN + binary, mask + 127, 2^30, the mask. */
const GIANT_FRAME_HEADER = Buffer.concat([Buffer.from([0x82, 0x80 | 127]), Buffer.from([0, 0, 0, 0, 0x40, 0, 0, 0]), randomBytes(4)]);

/** A raw connection that completed a graphql-ws WebSocket handshake (101) and will speak nothing but bytes it is told to. */
async function upgradedConnection(serverUrl: string): Promise<RawConnection & { afterHandshake(): Buffer }> {
  const connection = await rawConnection(serverUrl);
  connection.socket.write(
    'GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
  );
  const handshakeEnd = () => connection.received().indexOf('\r\n\r\n');
  await within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (handshakeEnd() < 0) return;
        connection.socket.off('data', check);
        resolve();
      };
      connection.socket.on('data', check);
      check();
    }),
    'upgraded',
  );
  expect(connection.received().toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  return { ...connection, afterHandshake: () => connection.received().subarray(handshakeEnd() + 4) };
}

/** The code of the close frame at the start of `frames` (unmasked, as a server sends it), if that is what it is. */
const closeCodeOf = (frames: Buffer) => (frames.length >= 4 && frames[0] === 0x88 ? frames.readUInt16BE(2) : undefined);

type Upgrade = { status: 101; socket: WebSocket } | { status: number; headers: IncomingHttpHeaders };

/**
 * A graphql-ws connection as a client opens one: upgraded, `connection_init` with the token, acknowledged. Or the
 * HTTP answer that refused the upgrade.
 */
function graphqlSocket(
  serverUrl: string,
  token: string,
  options: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<Upgrade> {
  const socket = new WebSocket(`${serverUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', options);
  leftOpen.push(() => socket.terminate());
  return within(
    new Promise<Upgrade>((resolve, reject) => {
      socket.on('error', reject);
      socket.once('unexpected-response', (req, res) => {
        resolve({ status: res.statusCode!, headers: res.headers });
        res.resume();
        req.destroy();
      });
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      socket.on('message', (data) => JSON.parse(String(data)).type === 'connection_ack' && resolve({ status: 101, socket }));
      socket.once('close', (code, reason) => reject(new Error(`closed before the acknowledgement: ${code} ${reason}`)));
    }),
    'answered',
  );
}

const socketOf = (upgrade: Upgrade) => {
  if (!('socket' in upgrade)) throw new Error(`the upgrade was refused with ${upgrade.status}`);
  return upgrade.socket;
};
const headersOf = (upgrade: Upgrade) => {
  if (!('headers' in upgrade)) throw new Error('the upgrade was accepted');
  return upgrade.headers;
};

interface EventStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** What arrived so far. */
  body(): string;
  close(): void;
}

/** A taskChanges subscription over Server-Sent Events (POST /graphql/stream) on a connection of its own, once answered. */
function eventStream(
  serverUrl: string,
  token: string,
  options: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<EventStream> {
  const { hostname, port } = new URL(serverUrl);
  return within(
    new Promise<EventStream>((resolve, reject) => {
      const req = request(
        {
          host: hostname,
          port,
          path: '/graphql/stream',
          method: 'POST',
          agent: false,
          localAddress: options.localAddress,
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            authorization: `Bearer ${token}`,
            ...options.headers,
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('error', () => {});
          resolve({ status: res.statusCode!, headers: res.headers, body: () => body, close: () => req.destroy() });
        },
      );
      leftOpen.push(() => req.destroy());
      req.on('error', reject);
      req.end(JSON.stringify({ query: TASK_CHANGES }));
    }),
    'answered',
  );
}

/** Closes a graphql-ws client socket and waits until it is closed. */
function closeSocket(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.close();
  return closed;
}

const isRetryAfter = expect.stringMatching(/^[1-9]\d*$/);

describe('a connection that does not send its whole request in time (REQUEST_HEADERS_TIMEOUT_MS)', () => {
  const t = serverForTests({ env: { REQUEST_HEADERS_TIMEOUT_MS: '500' } });

  it('is closed when it sends a WebSocket upgrade whose headers never end', async () => {
    const connection = await rawConnection(t.server.url);
    connection.socket.write('GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    await closedByTheServer(connection);
  });

  it('is closed when it sends a request whose headers never end', async () => {
    const connection = await rawConnection(t.server.url);
    connection.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n');
    await closedByTheServer(connection);
  });

  it('is closed when it sends nothing at all', async () => {
    await closedByTheServer(await rawConnection(t.server.url));
  });

  it('is closed when it sends a Server-Sent Events subscribe request whose body never ends', async () => {
    const { token } = await signUpUser(t.server.url);
    const connection = await rawConnection(t.server.url);
    connection.socket.write(
      'POST /graphql/stream HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\naccept: text/event-stream\r\n' +
        `authorization: Bearer ${token}\r\ncontent-length: 100\r\n\r\n{"query":`,
    );
    await closedByTheServer(connection);
    // Never a stream: at most Node's 408.
    expect(connection.received().toString('latin1')).not.toMatch(/^HTTP\/1\.1 200/);
  });

  it('does not cut a stream whose request was complete, however long it stays open', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    leftOpen.push(() => void session.close());
    const overWebSocket = session.subscribe();
    const overEvents = await eventStream(t.server.url, user.token);
    expect(overEvents.status).toBe(200);
    await waitFor(() => t.server.feed.size === 2);
    // Several times the timeout, and several of its checks.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const task = await createTask(user.api, { title: 'still here' });
    expect((await overWebSocket.take(1)).map((change) => change.taskId)).toEqual([task.id]);
    await waitFor(() => overEvents.body().includes(task.id));
    expect(overWebSocket.ending).toBeUndefined();
  });
});

describe('the server at MAX_CONNECTIONS open connections', () => {
  const t = serverForTests({ env: { MAX_CONNECTIONS: '5', REQUEST_HEADERS_TIMEOUT_MS: '60000' } });

  it('closes each connection past the cap without an answer, and takes new ones again once some close', async () => {
    // Connected one after the other: the server accepts them in this order, the sixth last.
    const held: RawConnection[] = [];
    for (let i = 0; i < 5; i++) held.push(await rawConnection(t.server.url));
    try {
      const sixth = await rawConnection(t.server.url);
      sixth.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
      await closedByTheServer(sixth);
      expect(sixth.received()).toHaveLength(0);
      await expect(fetch(`${t.server.url}/health/live`)).rejects.toThrow();
      expect(held.map((connection) => connection.socket.destroyed)).toEqual([false, false, false, false, false]);
    } finally {
      for (const connection of held) connection.socket.destroy();
    }
    // The server learns of the closes a moment later.
    await waitFor(
      async () =>
        (await fetch(`${t.server.url}/health/live`).then(
          (res) => res.status,
          () => 0,
        )) === 200,
    );
  });
});

describe('the cap on streams per client address (MAX_STREAMS_PER_IP)', () => {
  const t = serverForTests({ env: { MAX_STREAMS_PER_IP: '2' } });
  let token: string;
  beforeAll(async () => {
    ({ token } = await signUpUser(t.server.url));
  });

  it('lets two streams in from one address, refuses a third with 429 and Retry-After on either transport, and lets another address in', async () => {
    socketOf(await graphqlSocket(t.server.url, token));
    socketOf(await graphqlSocket(t.server.url, token));

    const third = await graphqlSocket(t.server.url, token);
    expect(third.status).toBe(429);
    expect(headersOf(third)['retry-after']).toEqual(isRetryAfter);
    const overEvents = await eventStream(t.server.url, token);
    expect(overEvents.status).toBe(429);
    expect(overEvents.headers['retry-after']).toEqual(isRetryAfter);
    await waitFor(() => overEvents.body().length > 0);
    expect(JSON.parse(overEvents.body()).errors[0].extensions.code).toBe('RATE_LIMITED');

    socketOf(await graphqlSocket(t.server.url, token, { localAddress: '127.0.0.2' }));
    const elsewhere = await eventStream(t.server.url, token, { localAddress: '127.0.0.2' });
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.headers['content-type']).toMatch(/^text\/event-stream/);
  });

  it('gives an address its place back when one of its streams closes, on either transport', async () => {
    const from = { localAddress: '127.0.0.3' };
    const socket = socketOf(await graphqlSocket(t.server.url, token, from));
    const stream = await eventStream(t.server.url, token, from);
    expect(stream.status).toBe(200);
    expect((await graphqlSocket(t.server.url, token, from)).status).toBe(429);

    stream.close();
    // The server sees the close a moment later: until then, still refused.
    await waitFor(async () => (await graphqlSocket(t.server.url, token, from)).status === 101);
    expect((await eventStream(t.server.url, token, from)).status).toBe(429);

    await closeSocket(socket);
    await waitFor(async () => (await eventStream(t.server.url, token, from)).status === 200);
  });
});

describe('the cap on streams per client behind a proxy (TRUST_PROXY=1, MAX_STREAMS_PER_IP)', () => {
  const t = serverForTests({ env: { TRUST_PROXY: '1', MAX_STREAMS_PER_IP: '2' } });
  let token: string;
  beforeAll(async () => {
    ({ token } = await signUpUser(t.server.url));
  });
  const forwardedFor = (chain: string) => ({ headers: { 'x-forwarded-for': chain } });

  it('counts the WebSocket connections of each client by the address the proxy forwards, not the proxy’s', async () => {
    socketOf(await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.1')));
    socketOf(await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.1')));

    const third = await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.1'));
    expect(third.status).toBe(429);
    expect(headersOf(third)['retry-after']).toEqual(isRetryAfter);
    // An entry the client wrote itself before the proxy's is not believed.
    expect((await graphqlSocket(t.server.url, token, forwardedFor('198.51.100.7, 203.0.113.1'))).status).toBe(429);
    expect((await eventStream(t.server.url, token, forwardedFor('203.0.113.1'))).status).toBe(429);

    socketOf(await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.2')));
    expect((await eventStream(t.server.url, token, forwardedFor('203.0.113.2'))).status).toBe(200);
  });

  it('counts the Server-Sent Events streams of each client by the address the proxy forwards, not the proxy’s', async () => {
    expect((await eventStream(t.server.url, token, forwardedFor('203.0.113.3'))).status).toBe(200);
    expect((await eventStream(t.server.url, token, forwardedFor('203.0.113.3'))).status).toBe(200);

    const third = await eventStream(t.server.url, token, forwardedFor('203.0.113.3'));
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toEqual(isRetryAfter);
    expect((await eventStream(t.server.url, token, forwardedFor('198.51.100.7, 203.0.113.3'))).status).toBe(429);
    expect((await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.3'))).status).toBe(429);

    expect((await eventStream(t.server.url, token, forwardedFor('203.0.113.4'))).status).toBe(200);
    socketOf(await graphqlSocket(t.server.url, token, forwardedFor('203.0.113.4')));
  });
});

describe('the WebSocket and Server-Sent Events transports', () => {
  const t = serverForTests();
  // Whatever reaches stderr but through the logger: graphql-ws's useServer printed each socket's error there.
  const printed = { stderr: 0, consoleError: 0 };
  const { write } = process.stderr;
  const { error } = console;
  beforeEach(() => {
    printed.stderr = printed.consoleError = 0;
    process.stderr.write = ((...args: Parameters<typeof write>) => {
      printed.stderr += 1;
      return write.apply(process.stderr, args);
    }) as typeof write;
    // eslint-disable-next-line no-console
    console.error = (...args: unknown[]) => {
      printed.consoleError += 1;
      error(...args);
    };
  });
  afterEach(() => {
    process.stderr.write = write;
    // eslint-disable-next-line no-console
    console.error = error;
  });

  it('close each socket that announces a 1 GiB frame, log such faults at info without a stack, not once per socket, and print nothing', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const connection = await upgradedConnection(t.server.url);
        connection.socket.write(GIANT_FRAME_HEADER);
        await closedByTheServer(connection);
        return connection;
      }),
    );
    // 1009: "message too big", not the close of a socket that never sent connection_init (4408).
    expect(sockets.map((connection) => closeCodeOf(connection.afterHandshake()))).toEqual(sockets.map(() => 1009));

    const faults = t.server.logs.filter((line) => /websocket/i.test(line.msg));
    expect(faults.length).toBeGreaterThanOrEqual(1);
    expect(faults.length).toBeLessThanOrEqual(2);
    for (const line of faults) {
      expect(line).toMatchObject({ level: 30, msg: 'WebSocket connection failed', transport: 'websocket' });
      expect(line).not.toHaveProperty('stack');
      expect(line).not.toHaveProperty('err');
    }
    expect(printed).toEqual({ stderr: 0, consoleError: 0 });
    // And it goes on serving streams.
    const { token } = await signUpUser(t.server.url);
    socketOf(await graphqlSocket(t.server.url, token));
  });

  it('log no error, and print nothing, when clients go away in the middle of a stream', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    leftOpen.push(() => void session.close());
    const overWebSocket = session.subscribe();
    const overEvents = await eventStream(t.server.url, user.token);
    await waitFor(() => t.server.feed.size === 2);

    const writes = Promise.all(Array.from({ length: 30 }, (_, i) => createTask(user.api, { title: `burst ${i}` })));
    await overWebSocket.take(1);
    await waitFor(() => overEvents.body().includes('event: next'));
    // Gone without a goodbye: no close frame, no end of the request.
    session.socket()!.terminate();
    overEvents.close();
    await writes;
    await waitFor(() => t.server.feed.size === 0);

    expect(t.server.logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(printed).toEqual({ stderr: 0, consoleError: 0 });
  });
});
