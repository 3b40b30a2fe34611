import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, directUrlFor, type TestDatabase } from './database.js';
import { TcpProxy } from './tcp-proxy.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  body: { data?: T | null; errors?: { message: string; extensions?: Record<string, unknown>; path?: unknown[] }[] };
}

export interface TestServer extends RunningServer {
  config: Config;
  /** Every line the server logged, parsed. */
  logs: LogLine[];
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
  /** GET `path`; `body` is the parsed JSON, or the text when it is not JSON. */
  get(path: string): Promise<HttpResponse>;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface TestServerOptions {
  databaseUrl: string;
  /** DATABASE_DIRECT_URL; by default the unpooled twin of `databaseUrl`. */
  directUrl?: string;
  env?: Record<string, string>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  resolvers?: Function[];
}

/** The real server on a free port, configured as the environment would configure it, logging into memory. */
export async function startTestServer({
  databaseUrl,
  directUrl = directUrlFor(databaseUrl),
  env = {},
  resolvers,
}: TestServerOptions): Promise<TestServer> {
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl,
    DATABASE_DIRECT_URL: directUrl,
    BCRYPT_ROUNDS: '4',
    // Every test signs up from 127.0.0.1: the limits run, high enough never to refuse unless a test lowers them.
    AUTH_RATE_LIMIT: '100000',
    COST_RATE_LIMIT: '100000000',
    ...env,
  });
  const logs: LogLine[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const logger = createLogger(config, destination);
  const server = await startServer({ config, logger, database: { url: databaseUrl, directUrl }, resolvers, port: 0 });
  return {
    ...server,
    config,
    logs,
    gql: async <T>(query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as GraphQLResponse<T>['body'] };
    },
    get: async (path) => {
      const res = await fetch(`${server.url}${path}`);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, headers: res.headers, body };
    },
  };
}

export interface ServerFixture {
  db: TestDatabase;
  server: TestServer;
  /** Between the server and PostgreSQL when asked for (`proxied`), to cut or freeze the database. */
  proxy: TcpProxy;
}

/**
 * A fresh database and a server on it for the tests of the enclosing `describe`, stopped and dropped after
 * them. Its fields are set once `beforeAll` has run.
 */
export function serverForTests(options: Omit<TestServerOptions, 'databaseUrl' | 'directUrl'> & { proxied?: boolean } = {}): ServerFixture {
  const { proxied, ...serverOptions } = options;
  const fixture = {} as ServerFixture;
  beforeAll(async () => {
    fixture.db = await createTestDatabase();
    if (proxied) fixture.proxy = await TcpProxy.to(fixture.db.url);
    fixture.server = await startTestServer({
      ...serverOptions,
      databaseUrl: proxied ? fixture.proxy.urlFor(fixture.db.url) : fixture.db.url,
      directUrl: fixture.db.directUrl,
    });
  });
  afterAll(async () => {
    await fixture.proxy?.setMode('forward');
    await fixture.server?.stop();
    await fixture.proxy?.close();
    await fixture.db?.drop();
  });
  return fixture;
}

export interface InstancesFixture {
  db: TestDatabase;
  /** Two instances started together on one fresh database (they migrate once between them), sharing nothing else. */
  a: TestServer;
  b: TestServer;
}

/** Two servers on one fresh database for the tests of the enclosing `describe`, signing with one shared key. */
export function instancesForTests(jwtSecret: string, env: Record<string, string> = {}): InstancesFixture {
  const fixture = {} as InstancesFixture;
  beforeAll(async () => {
    fixture.db = await createTestDatabase();
    const start = () => startTestServer({ databaseUrl: fixture.db.url, env: { ...env, JWT_SECRET: jwtSecret } });
    [fixture.a, fixture.b] = await Promise.all([start(), start()]);
  });
  afterAll(async () => {
    await Promise.all([fixture.a?.stop(), fixture.b?.stop()]);
    await fixture.db?.drop();
  });
  return fixture;
}
