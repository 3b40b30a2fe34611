import { setTimeout as sleep } from 'node:timers/promises';
import { Arg, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../src/graphql/context.js';
import { inTransaction } from '../../src/db/transaction.js';
import { User } from '../../src/modules/users/user.entity.js';
import { createTestDatabase, openConnections, type TestDatabase } from '../support/database.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Writes through the request's EntityManager, as feature resolvers do, and can fail at any step. */
@Resolver()
class WritesResolver {
  @Mutation(() => Boolean)
  createUsers(
    @Ctx() context: Context,
    @Arg('emails', () => [String]) emails: string[],
    @Arg('failAfter', () => Number, { nullable: true }) failAfter: number | null,
  ): Promise<boolean> {
    return inTransaction(context.em, async (em) => {
      for (const [index, email] of emails.entries()) {
        if (index === failAfter) throw new Error('failed halfway');
        em.create(User, { email, passwordHash: 'not-a-real-hash' });
        // Flush each row, so the earlier ones are already in the database when a later one fails.
        await em.flush();
      }
      return true;
    });
  }

  @Query(() => Boolean)
  async slow(@Arg('ms', () => Number) ms: number): Promise<boolean> {
    await sleep(ms);
    return true;
  }
}

describe('a mutation is one unit of work', () => {
  let db: TestDatabase;
  let server: TestServer;
  const count = async () => (await db.query<{ n: number }>('select count(*)::int as n from users')).rows[0]!.n;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer({ databaseUrl: db.url, resolvers: [WritesResolver] });
  });
  afterAll(async () => {
    await server.stop();
    await db.drop();
  });

  it('commits every write when the resolver succeeds', async () => {
    const { body } = await server.gql(`mutation { createUsers(emails: ["a@example.com", "b@example.com"]) }`);
    expect(body).toEqual({ data: { createUsers: true } });
    expect(await count()).toBe(2);
  });

  it('leaves no row behind when the resolver throws after flushing some of them', async () => {
    const { body } = await server.gql(`mutation { createUsers(emails: ["c@example.com", "d@example.com"], failAfter: 1) }`);
    expect(body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await count()).toBe(2);
  });

  it('leaves no row behind when the database refuses a later write', async () => {
    const { body } = await server.gql(`mutation { createUsers(emails: ["e@example.com", "a@example.com"]) }`);
    expect(body.errors).toHaveLength(1);
    expect(await count()).toBe(2);
    const { rows } = await db.query(`select 1 from users where email = 'e@example.com'`);
    expect(rows).toHaveLength(0);
  });

  it('serves the next request on the same server normally', async () => {
    const { body } = await server.gql(`mutation { createUsers(emails: ["f@example.com"]) }`);
    expect(body).toEqual({ data: { createUsers: true } });
    expect((await server.gql(`{ health { status } }`)).body).toEqual({ data: { health: { status: 'OK' } } });
    expect(await count()).toBe(3);
  });

  it('gives every request its own EntityManager', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => server.gql(`mutation { createUsers(emails: ["p${i}@example.com"]) }`)),
    );
    for (const { body } of results) expect(body).toEqual({ data: { createUsers: true } });
    expect(await count()).toBe(13);
  });
});

describe('graceful stop', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer({ databaseUrl: db.url, resolvers: [WritesResolver] });
  });
  afterAll(async () => {
    await db.drop();
  });

  it('lets in-flight requests finish, then refuses new ones and closes the pool', async () => {
    const inFlight = server.gql(`{ slow(ms: 700) }`);
    await sleep(100);
    const stopped = server.stop();
    await sleep(100);
    await expect(fetch(`${server.url}/health/live`)).rejects.toThrow();
    expect((await inFlight).body).toEqual({ data: { slow: true } });
    await stopped;
    expect(await openConnections(db)).toBe(0);
  });
});
