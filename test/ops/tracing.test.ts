import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { freePort } from '../../src/embedded/embedded.js';
import { redactQuery, ScrubbingSpanProcessor, sqlShape } from '../../src/observability/span-scrubber.js';
import { COMPILE_AFTER } from '../../src/graphql/compiled-executor.js';
import { signUpUser, uniqueEmail } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from '../support/otlp-receiver.js';
import { spawnServer, type ServerProcess } from '../support/process.js';

/** In every value the client sends below; no export may contain it. */
const MARKER = 'zq-secret-title-42';
const WATCH_MODULES = `--import ${join(PROJECT_ROOT, 'test/support/module-watch.js')}`;
const SERVER = 2;

const TASK_PAGE = /* GraphQL */ `
  query TaskPage($first: Int, $filter: TaskFilter) {
    tasks(first: $first, filter: $filter) {
      totalCount
      edges {
        node {
          id
          title
          owner {
            email
          }
        }
      }
    }
  }
`;
const CREATE_TASK = /* GraphQL */ `
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) {
      id
    }
  }
`;

const traceparent = () => ({ traceId: randomBytes(16).toString('hex'), parentId: randomBytes(8).toString('hex') });

describe('the span scrubber', () => {
  it('reduces SQL to its shape: literals of every kind become ?, identifiers, placeholders and casts stay', () => {
    expect(sqlShape(`select "t1".id from "tasks" as "t1" where "email" = 'a@b.c' and n > 21 and x = 1.5e3 limit $1`)).toBe(
      `select "t1".id from "tasks" as "t1" where "email" = ? and n > ? and x = ? limit $1`,
    );
    expect(sqlShape(`insert into t (a, b, c) values ('it''s', E'back\\slash '' quote', '{tag1,tag2}'::text[])`)).toBe(
      `insert into t (a, b, c) values (?, ?, ?::text[])`,
    );
    expect(sqlShape(`select $$zq$$, $body$ it's $body$, x'1f', '2026-01-01'::timestamptz /* zq */ -- zq`)).toBe(
      `select ?, ?, ?, ?::timestamptz  `,
    );
    expect(sqlShape(`select * from t where title ilike'%zq%' or title ilike '%zq`)).toBe(
      `select * from t where title ilike? or title ilike ?`,
    );
  });

  it('keeps the names of query parameters and drops their values', () => {
    expect(redactQuery('query=%7B+me+%7D&variables=%7B%7D')).toBe('query=REDACTED&variables=REDACTED');
  });

  it('drops exception messages and status descriptions, keeping the error type and the stack frames', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new ScrubbingSpanProcessor(), new SimpleSpanProcessor({ exporter })] });
    const span = provider.getTracer('test').startSpan('work');
    const error = new SyntaxError(`Unexpected token in "${MARKER}"`);
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.setAttributes({ 'db.query.text': `select '${MARKER}'`, 'url.query': `q=${MARKER}`, 'url.full': `http://h/p?q=${MARKER}` });
    span.end();
    const [exported] = exporter.getFinishedSpans();
    expect(JSON.stringify([exported!.attributes, exported!.events, exported!.status])).not.toContain(MARKER);
    expect(exported!.attributes).toMatchObject({
      'db.query.text': 'select ?',
      'url.query': 'q=REDACTED',
      'url.full': 'http://h/p?q=REDACTED',
    });
    expect(exported!.events[0]!.attributes).toMatchObject({
      'exception.type': 'SyntaxError',
      'exception.stacktrace': expect.stringMatching(/^\s+at /),
    });
    expect(exported!.status).toEqual({ code: SpanStatusCode.ERROR });
  });
});

describe('traces', () => {
  let db: TestDatabase;
  let receiver: OtlpReceiver;
  const started: ServerProcess[] = [];

  async function start(env: Record<string, string | undefined>) {
    const port = await freePort();
    const server = spawnServer({ DATABASE_URL: db.url, DATABASE_DIRECT_URL: db.directUrl, PORT: String(port), BCRYPT_ROUNDS: '4', ...env });
    started.push(server);
    await server.waitFor(/"msg":"server ready"/);
    return { server, url: `http://127.0.0.1:${port}` };
  }

  async function stop(server: ServerProcess) {
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  }

  const tasksRequest = (url: string, token: string, traceId: string, parentId: string) =>
    fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${parentId}-01` },
      body: JSON.stringify({ query: TASK_PAGE, variables: { first: 10, filter: { search: MARKER } } }),
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    for (const server of started) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await receiver?.close();
    await db?.drop();
  });

  it('follow a request from the caller’s traceparent through HTTP and the GraphQL operation to each SQL statement, and carry no client value', async () => {
    const { server, url } = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'tracing-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    expect(server.output()).toMatch(/"msg":"exporting traces over OTLP"/);

    const email = uniqueEmail(`${MARKER}-mail`);
    const password = `${MARKER}-password`;
    const user = await signUpUser(url, email, password);
    await user.api.ok(CREATE_TASK, { input: { title: `${MARKER} by variable` } });
    await user.api.ok(`mutation { createTask(input: { title: "${MARKER} inline", description: """${MARKER} block""" }) { id } }`);
    // The document in the query string, a literal quoted back by validation, and a body that is not JSON.
    const viaGet = await fetch(
      `${url}/graphql?query=${encodeURIComponent(`query ByGet { tasks(filter: { search: "${MARKER}" }) { totalCount } }`)}`,
      {
        headers: { authorization: `Bearer ${user.token}`, 'apollo-require-preflight': 'true' },
      },
    );
    expect(viaGet.status).toBe(200);
    const invalid = await user.api.request(`{ tasks(first: "${MARKER}") { totalCount } }`);
    expect(invalid.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const malformed = await user.api.request(`{ tasks(filter: { search: "${MARKER}" "${MARKER}" }) { totalCount } }`);
    expect(malformed.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    const notJson = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"query": ${MARKER}`,
    });
    expect(notJson.status).toBe(400);
    // Probes and scrapes make no trace.
    for (const path of ['/health/live', '/health/ready', '/health', '/metrics']) expect((await fetch(`${url}${path}`)).status).toBe(200);

    // From its COMPILE_AFTER-th run a query is compiled (graphql-jit) rather than executed by graphql-js: that run's
    // trace is the one looked at, so that the operation's span is there on the path hot documents take.
    for (let run = 1; run < COMPILE_AFTER; run++) {
      const earlier = traceparent();
      expect((await tasksRequest(url, user.token, earlier.traceId, earlier.parentId)).status).toBe(200);
    }
    const { traceId, parentId } = traceparent();
    const res = await tasksRequest(url, user.token, traceId, parentId);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { tasks: { totalCount: number } } }).data.tasks.totalCount).toBe(2);
    const requestId = res.headers.get('x-request-id')!;

    const isDb = (span: OtlpSpan) => (span.attributes['db.system.name'] ?? span.attributes['db.system']) === 'postgresql';
    await receiver.waitFor((spans) => spans.some((span) => span.traceId === traceId && span.kind === SERVER));
    await stop(server);

    const trace = receiver.spans().filter((span) => span.traceId === traceId);
    const byId = new Map(trace.map((span) => [span.spanId, span]));
    const ancestors = (span: OtlpSpan): OtlpSpan[] => {
      const parent = byId.get(span.parentSpanId);
      return parent ? [parent, ...ancestors(parent)] : [];
    };
    // One tree: the HTTP server span under the caller's span, every other span under a span of this trace.
    const root = trace.find((span) => span.kind === SERVER)!;
    expect(root).toMatchObject({ parentSpanId: parentId, name: 'POST /graphql', scope: '@opentelemetry/instrumentation-http' });
    expect(trace.filter((span) => span !== root).every((span) => byId.has(span.parentSpanId))).toBe(true);
    // Express names the route, so its hooks were in place before express was imported.
    expect(trace.some((span) => span.scope === '@opentelemetry/instrumentation-express' && span.name === 'middleware - jsonParser')).toBe(
      true,
    );
    const operation = trace.find((span) => span.name === 'query TaskPage')!;
    expect(operation.attributes).toMatchObject({ 'graphql.operation.name': 'TaskPage', 'graphql.operation.type': 'query' });
    expect(operation.attributes['graphql.source']).toMatch(/^query TaskPage /);
    expect(ancestors(operation)).toContain(root);
    const statements = trace.filter((span) => isDb(span) && ancestors(span).includes(operation));
    expect(statements.length).toBeGreaterThan(0);
    // The search goes as a parameter of the page's statement, never exported: only the statement's shape is.
    expect(statements.map((span) => span.attributes['db.query.text'] ?? span.attributes['db.statement']).join('\n')).toMatch(
      /ilike \$2 escape \?/i,
    );
    expect(trace.some((span) => span.name.startsWith('graphql.resolve'))).toBe(false);
    expect(receiver.spans().filter((span) => /^\/(health|metrics)/.test(String(span.attributes['url.path'])))).toEqual([]);

    const everything = receiver.exports.map((received) => received.body.toString()).join('\n');
    const { rows } = await db.query<{ password_hash: string }>('select password_hash from users');
    for (const secret of [MARKER, email, password, user.token, ...rows.map((row) => row.password_hash)])
      expect(everything).not.toContain(secret);
    expect(everything).not.toMatch(/authorization|bearer/i);

    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.includes(`"requestId":"${requestId}"`));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ traceId });
  }, 60_000);

  it('export over http/protobuf too, and send what they still hold when the server stops', async () => {
    const before = receiver.exports.length;
    const { server, url } = await start({
      NODE_OPTIONS: WATCH_MODULES,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      // Nothing leaves before the shutdown flushes it.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    expect(server.output()).toMatch(/module-watch: loaded @opentelemetry\/sdk-node/);
    const user = await signUpUser(url);
    const { traceId, parentId } = traceparent();
    expect((await tasksRequest(url, user.token, traceId, parentId)).status).toBe(200);
    expect(receiver.exports.length).toBe(before);
    await stop(server);

    const protobuf = receiver.exports.slice(before).filter((received) => received.contentType === 'application/x-protobuf');
    const body = Buffer.concat(protobuf.map((received) => received.body));
    // In protobuf, ids are raw bytes and strings are UTF-8.
    expect(body.includes(Buffer.from(traceId, 'hex'))).toBe(true);
    expect(body.includes(Buffer.from(parentId, 'hex'))).toBe(true);
    for (const text of ['query TaskPage', 'postgresql', 'todo-graphql-server']) expect(body.includes(text)).toBe(true);
    expect(body.includes(MARKER)).toBe(false);
  }, 60_000);

  it('load nothing of OpenTelemetry without an OTLP endpoint', async () => {
    const before = receiver.exports.length;
    const { server, url } = await start({
      NODE_OPTIONS: WATCH_MODULES,
      OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'tracing-test',
    });
    const user = await signUpUser(url);
    const { traceId, parentId } = traceparent();
    expect((await tasksRequest(url, user.token, traceId, parentId)).status).toBe(200);
    await stop(server);

    expect(server.output()).not.toMatch(/module-watch|exporting traces/);
    expect(server.output()).not.toMatch(/"traceId"/);
    expect(receiver.exports.length).toBe(before);
  }, 60_000);
});
