import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generate } from '@graphql-codegen/cli';
import config from '../../codegen.js';
import {
  ApiError,
  createTaskOnce,
  SessionTokens,
  sessionClient,
  firstOverduePage,
  followTaskChanges,
  persistedClient,
  saveTask,
  type Request,
  type TaskChange,
} from '../../examples/client/client.js';
import {
  CompleteTaskDocument,
  CreateTaskDocument,
  SignInDocument,
  SignOutDocument,
  SignUpDocument,
  TaskPageDocument,
} from '../../examples/client/gql/graphql.js';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { sessionIdOf, uniqueEmail } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { FROM_START } from '../support/subscriptions.js';
import { TcpProxy } from '../support/tcp-proxy.js';

describe('typed client operations (GraphQL Code Generator)', () => {
  it('are what codegen makes of schema.graphql today (run `npm run codegen` after changing either)', async () => {
    const outputs = (await generate({ ...config, cwd: PROJECT_ROOT, silent: true }, false)) as { filename: string; content: string }[];
    expect(outputs.length).toBeGreaterThan(0);
    for (const { filename, content } of outputs) {
      expect(readFileSync(join(PROJECT_ROOT, filename), 'utf8')).toBe(content);
    }
  });

  it('type-check with the example client that uses them', async () => {
    const tsc = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await expect(
      promisify(execFile)(process.execPath, [tsc, '-p', 'examples/client/tsconfig.json'], { cwd: PROJECT_ROOT }),
    ).resolves.toBeDefined();
  });

  describe('against a server that runs only their trusted documents', () => {
    const manifest = join(PROJECT_ROOT, 'examples/client/gql/persisted-documents.json');
    const t = serverForTests({ env: { TRUSTED_DOCUMENTS: manifest } });

    it('refresh the access token once, however many requests want a new one at once', async () => {
      const url = `${t.server.url}/graphql`;
      const email = uniqueEmail('refresher');
      const password = 'correct horse battery';
      const { signUp } = await persistedClient(url)(SignUpDocument, { input: { email, password } });
      /** Refreshes the session has had: its refresh tokens but the first. */
      const refreshesOf = async (token: string) =>
        Number(
          (await t.db.query<{ n: string }>('select count(*) as n from refresh_tokens where session_id = $1', [sessionIdOf(token)])).rows[0]!
            .n,
        ) - 1;
      const titles = (prefix: string) => Array.from({ length: 10 }, (_, i) => ({ title: `${prefix} ${i}` }));

      // About to expire: ten requests in flight, one refresh, all answered.
      const expiring = new SessionTokens(url, { ...signUp, expiresAt: new Date(Date.now() + 5_000).toISOString() });
      const send = sessionClient(url, expiring);
      await Promise.all(titles('early').map((input) => send(CreateTaskDocument, { input })));
      expect(await refreshesOf(signUp.token)).toBe(1);

      // Refused by the server (here, a token it never issued; in life, one past its time): one refresh, all answered.
      const { signIn } = await persistedClient(url)(SignInDocument, { email, password });
      let ended = false;
      const refused = new SessionTokens(url, { ...signIn, token: 'not-a-token' }, () => (ended = true));
      const again = sessionClient(url, refused);
      const created = await Promise.all(titles('refused').map((input) => again(CreateTaskDocument, { input })));
      expect(created).toHaveLength(10);
      expect(await refreshesOf(signIn.token)).toBe(1);
      expect(ended).toBe(false);

      // A session that has ended: the refresh is refused, and the client is told to sign in again.
      await again(SignOutDocument, { scope: 'ALL' });
      await expect(send(TaskPageDocument, { first: 1 })).rejects.toThrow(ApiError);
      await expect(again(TaskPageDocument, { first: 1 })).rejects.toThrow(ApiError);
      expect(ended).toBe(true);
    });

    it('follow the task changes over WebSocket, resuming from the last cursor after the connection is cut', async () => {
      const url = `${t.server.url}/graphql`;
      const { signUp } = await persistedClient(url)(SignUpDocument, {
        input: { email: uniqueEmail('follower'), password: 'correct horse battery' },
      });
      const request = persistedClient(url, signUp.token);
      const create = async (title: string) => (await request(CreateTaskDocument, { input: { title } })).createTask.id;
      // Between the client and the server, to cut its socket as a network change or a deploy would.
      const proxy = await TcpProxy.to(t.server.url);
      const seen: TaskChange[] = [];
      const follower = followTaskChanges(
        `${proxy.urlFor(t.server.url).replace(/^http/, 'ws').replace(/\/$/, '')}/graphql`,
        () => signUp.token,
        {
          change: (change) => seen.push(change),
          resync: () => {
            throw new Error('no resync expected');
          },
        },
        FROM_START,
      );
      const until = async (n: number) => {
        for (const deadline = Date.now() + 15_000; seen.length < n; await new Promise((resolve) => setTimeout(resolve, 25))) {
          if (Date.now() > deadline) throw new Error(`saw ${seen.length} of ${n} changes`);
        }
      };
      try {
        const one = await create('one');
        await until(1);
        await proxy.setMode('refuse');
        await request(CompleteTaskDocument, { id: one });
        await create('three');
        await proxy.setMode('forward');
        await until(3);
        await create('four');
        await until(4);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(seen.map((change) => [change.kind, change.task?.title])).toEqual([
          ['CREATED', 'one'],
          ['UPDATED', 'one'],
          ['CREATED', 'three'],
          ['CREATED', 'four'],
        ]);
        expect(follower.cursor).toBe(seen.at(-1)!.cursor);
      } finally {
        await follower.stop();
        await proxy.close();
      }
    });

    it('retry a create whose answer was lost without making a second task, and show the current task on a conflicting edit', async () => {
      const url = `${t.server.url}/graphql`;
      const { signUp } = await persistedClient(url)(SignUpDocument, {
        input: { email: uniqueEmail('devices'), password: 'correct horse battery' },
      });
      const request = persistedClient(url, signUp.token);
      // The first answer is lost on the way back: the task was made, the client does not know it.
      let sent = 0;
      const lossy = (async (document, variables) => {
        const answer = await request(document, variables);
        if (sent++ === 0) throw new TypeError('fetch failed');
        return answer;
      }) as Request;
      const task = await createTaskOnce(lossy, { title: 'Pay the rent' });
      expect(sent).toBe(2);
      expect(task).toMatchObject({ title: 'Pay the rent', version: 1 });
      expect((await request(TaskPageDocument, { first: 20 })).tasks.totalCount).toBe(1);
      // Two devices edit the version they loaded: the second is shown what the first saved.
      const phone = await saveTask(request, task, { title: 'Pay the rent today' });
      expect(phone.saved).toMatchObject({ title: 'Pay the rent today', version: 2 });
      const laptop = await saveTask(request, task, { tags: ['home'] });
      expect(laptop.conflict).toMatchObject({ title: 'Pay the rent today', tags: [], version: 2 });
    });

    it('work end to end, sent by their hash', async () => {
      const page = await firstOverduePage(`${t.server.url}/graphql`, uniqueEmail('client'), 'correct horse battery');
      expect(page).toEqual([expect.objectContaining({ title: 'Renew the passport', isOverdue: true, tags: ['admin'], status: 'PENDING' })]);
    });

    it('accept a document by Apollo Client’s persisted-query extension and by its exact text, and nothing else', async () => {
      const documents = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, string>;
      const [hash, text] = Object.entries(documents).find(([, document]) => document.startsWith('query Me'))!;
      const post = async (body: unknown) => {
        const res = await fetch(`${t.server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } };
      };
      const apollo = await post({ extensions: { persistedQuery: { version: 1, sha256Hash: hash.replace('sha256:', '') } } });
      expect(apollo).toEqual({ status: 200, body: { data: { me: null } } });
      expect(await post({ query: text })).toEqual({ status: 200, body: { data: { me: null } } });
      const get = await fetch(`${t.server.url}/graphql?documentId=${encodeURIComponent(hash)}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect(await get.json()).toEqual({ data: { me: null } });
      for (const refused of [
        { query: '{ me { id } }' },
        { query: `${text} ` },
        { documentId: `sha256:${'0'.repeat(64)}` },
        { documentId: hash, query: '{ health { status } }' },
        { extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } }, query: '{ health { status } }' },
      ]) {
        const answer = await post(refused);
        expect(answer.status).toBe(400);
        expect(answer.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      }
      const getRefused = await fetch(`${t.server.url}/graphql?query=${encodeURIComponent('{ health { status } }')}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect(getRefused.status).toBe(400);
    });
  });
});
