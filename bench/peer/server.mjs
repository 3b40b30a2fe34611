// PostGraphile 5 (Amber preset) in library mode: the benchmark's off-the-shelf peer, serving the `public` schema of
// DATABASE_URL at /graphql on PORT. Production-like: no watch mode, no GraphiQL, no explain, no websockets; a pool
// of DB_POOL_MAX (10) connections, as our server has. GET /health/ready answers 200 once the schema is built, since
// the server only listens then. Started by bench/peer.ts (`startPeer`); dependencies in bench/peer/package.json.
import { createServer } from 'node:http';
import process from 'node:process';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';

const pgService = makePgService({
  connectionString: process.env.DATABASE_URL,
  schemas: ['public'],
  poolConfig: { max: Number(process.env.DB_POOL_MAX ?? 10) },
  pubsub: false, // no subscriptions: no LISTEN client taken from the pool
});

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [pgService],
  grafast: { explain: false },
  grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false, websockets: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
await pgl.getSchema(); // introspect and build before listening: a failure here exits non-zero

// `serv.addTo(server)` would answer every other path with 404 itself; its handler is the same one, minus websockets.
const handleGraphQL = serv.createHandler();
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health/ready') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  handleGraphQL(req, res);
});
server.listen(Number(process.env.PORT ?? 5678), '127.0.0.1');

process.once('SIGTERM', async () => {
  server.close();
  server.closeAllConnections();
  await pgl.release();
  await pgService.release?.();
  process.exit(0);
});
