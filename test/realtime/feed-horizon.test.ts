import { Writable } from 'node:stream';
import pg from 'pg';
import { createLogger } from '../../src/observability/logger.js';
import { ChangeFeed } from '../../src/modules/tasks/change-feed.js';
import { listenOn } from '../../src/realtime/change-listener.js';
import { signUpUser } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import type { LogLine } from '../support/server.js';
import { serverForTests } from '../support/server.js';
import { wsSession } from '../support/subscriptions.js';
import { createTask } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('what the change feed waits for', () => {
  const t = serverForTests();
  let other: TestDatabase;
  let elsewhere: pg.Client;
  let here: pg.Client;
  beforeAll(async () => {
    // Another database of the same server: its transaction ids are the cluster's, in every snapshot.
    other = await createTestDatabase();
    elsewhere = new pg.Client({ connectionString: other.directUrl, application_name: 'a report in another database' });
    here = new pg.Client({ connectionString: t.db.directUrl, application_name: 'a repair left open' });
    await Promise.all([elsewhere.connect(), here.connect()]);
    // Its database is dropped with the server's.
    here.on('error', () => undefined);
  });
  afterAll(async () => {
    await elsewhere?.end();
    await other?.drop();
  });

  it('delivers other changes within a second while transactions stay open, the open one’s change once when it commits, and names it on /metrics and in a warning', async () => {
    const lines: LogLine[] = [];
    const logger = createLogger(
      { env: 'test', logLevel: 'warn' },
      new Writable({
        write: (chunk, _, done) => (
          lines.push(
            ...String(chunk)
              .split('\n')
              .filter(Boolean)
              .map((line) => JSON.parse(line)),
          ),
          done()
        ),
      }),
    );
    const feed = new ChangeFeed(t.server.orm, t.server.config, listenOn(t.server.config, t.db.directUrl, logger), logger, {
      oldTransactionWarnMs: 500,
    });
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    const received = session.subscribe({}, 'subscription { taskChanges { kind task { title } } }');
    const subscription = await feed.open({ userId: user.user.id, after: null, expiresAt: Date.now() + 60_000 });
    const oldest = async () => metric((await t.server.get('/metrics')).body as string, 'change_feed_oldest_transaction_seconds');
    try {
      await waitFor(() => t.server.feed.size === 1);
      await elsewhere.query('begin');
      await elsewhere.query('select txid_current()');
      await here.query('begin');
      const { pid } = (await here.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!;
      await here.query(
        `insert into tasks (id, created_at, updated_at, title, status, priority, tags, owner_id)
         values (gen_random_uuid(), now(), now(), 'written in the open transaction', 'PENDING', 'MEDIUM', '{}', $1)`,
        [user.user.id],
      );
      // Changes keep arriving, each within a second, for as long as both stay open.
      const titles: string[] = [];
      for (let i = 0; i < 6; i++) {
        await createTask(user.api, { title: `meanwhile ${i}` });
        titles.push(...(await received.take(titles.length + 1, 1000)).slice(titles.length).map((change) => change.task!.title));
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      expect(titles).toEqual(Array.from({ length: 6 }, (_, i) => `meanwhile ${i}`));
      await waitFor(async () => (await oldest()) > 0, 15_000);
      await waitFor(() => lines.some((line) => line.pid === pid), 15_000);
      const warning = lines.find((line) => line.pid === pid)!;
      expect(warning).toMatchObject({
        level: 40,
        applicationName: 'a repair left open',
        state: 'idle in transaction',
        database: t.db.name,
      });
      expect(JSON.stringify(warning)).not.toMatch(/insert|select/i);
      // Named once, however long it stays open; the other database's transaction is not the feed's to wait for.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect(lines.filter((line) => line.pid === pid)).toHaveLength(1);
      expect(lines.filter((line) => line.applicationName === 'a report in another database')).toEqual([]);
      await here.query('commit');
      // Its change arrives when it commits (announced by nobody: the sweep finds it), once.
      expect((await received.take(7, 3000)).at(-1)!.task!.title).toBe('written in the open transaction');
      await createTask(user.api, { title: 'after' });
      expect((await received.take(8)).slice(6).map((change) => change.task!.title)).toEqual(['written in the open transaction', 'after']);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(received.changes).toHaveLength(8);
      await waitFor(async () => (await oldest()) === 0, 15_000);
    } finally {
      await here.end();
      await elsewhere.query('rollback');
      await subscription.return!();
      await feed.close();
      await session.close();
    }
  }, 60_000);

  it('ends its own idle transactions before they can hold every subscriber back (on direct connections; set it on the role behind a pooler)', async () => {
    const [row] = await t.server.orm.em
      .fork()
      .execute<{ idle_in_transaction_session_timeout: string }[]>('show idle_in_transaction_session_timeout');
    const pooled = t.server.config.databaseUrl !== t.server.config.databaseDirectUrl;
    expect(row!.idle_in_transaction_session_timeout).toBe(pooled ? '0' : '15s');
  });
});
