import type { MikroORM } from '@mikro-orm/postgresql';
import { MAX_NAMED, numbered, preparable, statementName } from '../../src/db/driver/prepared.js';
import { repeatable } from '../../src/db/driver/resilient-driver.js';
import { databaseForTests } from '../support/database.js';
import { openOrm } from '../support/orm.js';

// One connection in each pool, so that what the reads prepared can be seen in the same session.
const ONE_CONNECTION = { DB_POOL_MIN: '0', DB_POOL_MAX: '1' };
const SUM = `select ?::int + ? as n, 'why?' as q`;
const PREPARED = 'select name, statement from pg_prepared_statements order by statement';

describe('reads through the pool (real PostgreSQL)', () => {
  const fixture = databaseForTests();
  const orms: MikroORM[] = [];
  const open = async (env: Record<string, string> = {}) => {
    const orm = await openOrm(fixture.db.directUrl, { ...ONE_CONNECTION, ...env });
    orms.push(orm);
    return orm.em.fork();
  };
  afterAll(async () => {
    for (const orm of orms) await orm.close();
  });

  it('are prepared once per connection under a name on a direct connection, and answer with their parameters', async () => {
    const em = await open();
    expect(await repeatable(em, { sql: SUM, params: [1, 2] })).toEqual([{ n: 3, q: 'why?' }]);
    expect(await repeatable(em, { sql: SUM, params: [40, 2] })).toEqual([{ n: 42, q: 'why?' }]);
    const prepared = await repeatable<{ name: string; statement: string }>(em, { sql: PREPARED, params: [] });
    expect(prepared).toEqual([
      { name: statementName(numbered(SUM)), statement: numbered(SUM) },
      { name: statementName(PREPARED), statement: PREPARED },
    ]);
  });

  it('are not named behind a declared pooler (DATABASE_DIRECT_URL differs from DATABASE_URL)', async () => {
    const direct = new URL(fixture.db.directUrl);
    direct.searchParams.set('application_name', 'migrations');
    const em = await open({ DATABASE_DIRECT_URL: direct.toString() });
    expect(await repeatable(em, { sql: SUM, params: [1, 2] })).toEqual([{ n: 3, q: 'why?' }]);
    expect(await repeatable(em, { sql: PREPARED, params: [] })).toEqual([]);
  });

  it(`name at most ${MAX_NAMED} texts, the first ones made; the others run unnamed`, async () => {
    const em = await open();
    for (let i = 0; i < MAX_NAMED; i++) preparable(`select ${i} as i`);
    const late = 'select ?::int as late';
    expect(await repeatable(em, { sql: late, params: [7] })).toEqual([{ late: 7 }]);
    expect(statementName(numbered(late))).toBeUndefined();
    expect(statementName(numbered(SUM))).toBeDefined();
    const prepared = await repeatable<{ statement: string }>(em, { sql: PREPARED, params: [] });
    expect(prepared.map(({ statement }) => statement)).toEqual([PREPARED]);
  });

  // Under `npm run test:pgbouncer` only, where a real PgBouncer in transaction mode is there: a pooler nobody
  // declared (no DATABASE_DIRECT_URL) hands named statements to server connections that lack them.
  (process.env.TEST_POOLER_PORT ? it : it.skip)('answer through a real PgBouncer nobody declared as a pooler', async () => {
    const orm = await openOrm(fixture.db.url, { DB_POOL_MIN: '0', DB_POOL_MAX: '4' });
    orms.push(orm);
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => repeatable(orm.em.fork(), { sql: SUM, params: [round, i] })));
      expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => [{ n: round + i, q: 'why?' }]));
    }
  });

  // Last: it turns naming off for the rest of this file, as it would for the process.
  it('stop being named, and still answer, once a connection lacks a statement it was given (what a pooler does)', async () => {
    const em = await open();
    expect(await repeatable(em, { sql: SUM, params: [1, 2] })).toEqual([{ n: 3, q: 'why?' }]);
    // The same single connection forgets it, as a transaction-mode pooler's next server connection would not have it.
    await em.getConnection().execute('deallocate all');
    expect(await repeatable(em, { sql: SUM, params: [2, 2] })).toEqual([{ n: 4, q: 'why?' }]);
    expect(statementName(numbered(SUM))).toBeUndefined();
    expect(await repeatable(em, { sql: PREPARED, params: [] })).toEqual([]);
  });
});
