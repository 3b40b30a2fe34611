// The floor: a bare Node HTTP handler that runs the same SQL with pg and returns the same JSON. No GraphQL at
// all: the operation is recognised by its name.
import { createServer } from 'node:http';
import { createTask, health, tasks, userIdFrom } from './sql.js';

type Body = { operationName?: string; variables?: Record<string, unknown> };

async function answer(body: Body, authorization: string | undefined): Promise<unknown> {
  if (body.operationName === 'Health') return { health: await health() };
  const userId = await userIdFrom(authorization);
  if (!userId) throw new Error('UNAUTHENTICATED');
  switch (body.operationName) {
    case 'Page':
      return { tasks: await tasks(userId, 20, undefined, false) };
    case 'Filtered':
      return { tasks: await tasks(userId, 100, body.variables as { tagsAny: string[]; status: string[] }, true) };
    case 'Create':
      return { createTask: await createTask(userId, String(body.variables?.title)) };
    default:
      throw new Error('unknown operation');
  }
}

createServer((req, res) => {
  if (req.url !== '/graphql') return void res.writeHead(req.url === '/health/ready' ? 200 : 404).end();
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      const data = await answer(JSON.parse(Buffer.concat(chunks).toString()) as Body, req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data }));
    } catch (error) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: String(error) }] }));
    }
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
