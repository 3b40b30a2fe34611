import { Writable } from 'node:stream';
import pg from 'pg';
import { createLogger } from '../src/observability/logger.js';
import { ChangeFeed } from '../src/realtime/change-feed.js';
import { signUpUser } from './support/api.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import type { LogLine } from './support/server.js';
import { serverForTests } from './support/server.js';
import { wsSession } from './support/subscriptions.js';
import { waitFor } from './support/wait.js';

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('what the change feed waits for', () => {
  const t = serverForTests();
  let other: TestDatabase;
  let holder: pg.Client;
  beforeAll(async () => {
    // Another database of the same server: the horizon is the cluster's.
    other = await createTestDatabase();
    holder = new pg.Client({ connectionString: other.directUrl, application_name: 'a report left open' });
    await holder.connect();
  });
  afterAll(async () => {
    await holder?.end();
    await other?.drop();
  });

  it('shows on /metrics how long the oldest transaction has been open, names it in a warning, and forgets it when it ends', async () => {
    const lines: LogLine[] = [];
    const logger = createLogger(
      { env: 'test', logLevel: 'warn' },
      new Writable({ write: (chunk, _, done) => (lines.push(...String(chunk).split('\n').filter(Boolean).map((line) => JSON.parse(line))), done()) }),
    );
    const feed = new ChangeFeed(t.server.orm, t.server.config, t.db.directUrl, logger, { oldTransactionWarnMs: 500 });
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    session.subscribe({}, 'subscription { taskChanges { kind } }');
    const subscription = await feed.open({ userId: user.user.id, after: null, expiresAt: Date.now() + 60_000 });
    try {
      await waitFor(() => t.server.feed.size === 1);
      await holder.query('begin');
      const { pid } = (await holder.query<{ pid: number }>('select txid_current(), pg_backend_pid() as pid')).rows[0]!;
      await waitFor(async () => metric((await t.server.get('/metrics')).body as string, 'change_feed_oldest_transaction_seconds') > 0, 15_000);
      await waitFor(() => lines.some((line) => line.pid === pid), 15_000);
      const warning = lines.find((line) => line.pid === pid)!;
      expect(warning).toMatchObject({ level: 40, applicationName: 'a report left open', state: 'idle in transaction', database: other.name });
      expect(JSON.stringify(warning)).not.toMatch(/txid_current|select/i);
      // Named once, however long it stays open.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect(lines.filter((line) => line.pid === pid)).toHaveLength(1);
      await holder.query('rollback');
      await waitFor(async () => metric((await t.server.get('/metrics')).body as string, 'change_feed_oldest_transaction_seconds') === 0, 15_000);
    } finally {
      await subscription.return!();
      await feed.close();
      await session.close();
    }
  }, 60_000);

  it('ends its own idle transactions before they can hold every subscriber back (on direct connections; set it on the role behind a pooler)', async () => {
    const [row] = await t.server.orm.em.fork().execute<{ idle_in_transaction_session_timeout: string }[]>('show idle_in_transaction_session_timeout');
    const pooled = t.server.config.databaseUrl !== t.server.config.databaseDirectUrl;
    expect(row!.idle_in_transaction_session_timeout).toBe(pooled ? '0' : '15s');
  });
});
