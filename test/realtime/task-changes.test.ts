import pg from 'pg';
import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { COMPLETE_TASK, DELETE_TASK, UPDATE_TASK, createTask } from '../support/tasks.js';
import { contains, includes, ORIGIN, same } from '../../src/modules/tasks/change-position.js';
import { changesAfter, type TaskChange } from '../../src/modules/tasks/task.changes.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

/** Each change's position includes it and everything before it, and none after it. */
const increasing = (changes: TaskChange[]) =>
  changes.every(
    (change, i) =>
      includes(change.after, change.key) &&
      (i === 0 || (contains(change.after, changes[i - 1]!.after) && !same(change.after, changes[i - 1]!.after))) &&
      changes.slice(i + 1).every((later) => !includes(change.after, later.key)),
  );

describe('the task change log', () => {
  const t = serverForTests();
  const read = (user: User, after = ORIGIN, limit = 1000) => changesAfter(t.server.orm.em.fork(), user.user.id, after, limit);
  const changes = async (user: User, after = ORIGIN, limit = 1000) => (await read(user, after, limit)).changes;
  /** A transaction of the test's own, outside the server: it writes a task of `user` and stays open. */
  const openWriter = async (user: User, title: string) => {
    const client = new pg.Client({ connectionString: t.db.directUrl });
    await client.connect();
    await client.query('begin');
    await client.query(
      `insert into tasks (id, created_at, updated_at, title, status, priority, tags, owner_id)
       values (gen_random_uuid(), now(), now(), $1, 'PENDING', 'MEDIUM', '{}', $2)`,
      [title, user.user.id],
    );
    return client;
  };

  it('logs one change per mutation, in order, with its kind and the task as it committed', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'logged' });
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: 'renamed' } });
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    await user.api.ok(DELETE_TASK, { id: task.id });
    const logged = await changes(user);
    expect(logged.map(({ kind, taskId, task }) => ({ kind, taskId, title: task?.title, status: task?.status }))).toEqual([
      { kind: 'CREATED', taskId: task.id, title: 'logged', status: 'PENDING' },
      { kind: 'UPDATED', taskId: task.id, title: 'renamed', status: 'PENDING' },
      { kind: 'UPDATED', taskId: task.id, title: 'renamed', status: 'COMPLETED' },
      { kind: 'DELETED', taskId: task.id, title: undefined, status: undefined },
    ]);
    expect(increasing(logged)).toBe(true);
    for (const change of logged) expect(Math.abs(change.at.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('logs nothing for a mutation that fails', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'kept' });
    expect(await user.api.code(UPDATE_TASK, { id: task.id, input: { title: '   ' } })).toBe('BAD_USER_INPUT');
    expect(await user.api.code(COMPLETE_TASK, { id: '00000000-0000-4000-8000-000000000000' })).toBe('NOT_FOUND');
    expect(await user.api.code(DELETE_TASK, { id: task.id.replace(/.$/, (c) => (c === '0' ? '1' : '0')) })).toBe('NOT_FOUND');
    expect((await changes(user)).map((change) => change.kind)).toEqual(['CREATED']);
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    expect((await changes(user)).map((change) => change.kind)).toEqual(['CREATED', 'UPDATED']);
  });

  it('keeps each user’s changes to that user', async () => {
    const [alice, bob] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
    const ofAlice = await createTask(alice.api, { title: 'alice' });
    const ofBob = await createTask(bob.api, { title: 'bob' });
    await bob.api.ok(COMPLETE_TASK, { id: ofBob.id });
    expect(await bob.api.code(DELETE_TASK, { id: ofAlice.id })).toBe('NOT_FOUND');
    await alice.api.ok(DELETE_TASK, { id: ofAlice.id });
    expect((await changes(alice)).map(({ kind, taskId }) => [kind, taskId])).toEqual([
      ['CREATED', ofAlice.id],
      ['DELETED', ofAlice.id],
    ]);
    expect((await changes(bob)).map(({ kind, taskId }) => [kind, taskId])).toEqual([
      ['CREATED', ofBob.id],
      ['UPDATED', ofBob.id],
    ]);
  });

  it('reads only the changes after a position, in order, up to the limit', async () => {
    const user = await signUpUser(t.server.url);
    for (let i = 0; i < 5; i++) await createTask(user.api, { title: `task ${i}` });
    const all = await changes(user);
    const titles = (list: TaskChange[]) => list.map((change) => change.task?.title);
    expect(titles(all)).toEqual(['task 0', 'task 1', 'task 2', 'task 3', 'task 4']);
    expect(titles(await changes(user, all[1]!.after))).toEqual(['task 2', 'task 3', 'task 4']);
    const two = await read(user, all[1]!.after, 2);
    expect(titles(two.changes)).toEqual(['task 2', 'task 3']);
    expect(titles(await changes(user, two.through))).toEqual(['task 4']);
    expect(await changes(user, all[4]!.after)).toEqual([]);
  });

  it('delivers a change at once while an older transaction is still open, and the older one’s once it commits, never twice', async () => {
    const user = await signUpUser(t.server.url);
    const seen = await read(user);
    const older = await openWriter(user, 'older, committed last');
    let first: Awaited<ReturnType<typeof read>>;
    try {
      await createTask(user.api, { title: 'newer, committed first' });
      first = await read(user, seen.through);
      expect(first.changes.map((change) => change.task?.title)).toEqual(['newer, committed first']);
      expect(await changes(user, first.through)).toEqual([]);
      await older.query('commit');
    } finally {
      await older.end();
    }
    const second = await read(user, first.through);
    expect(second.changes.map((change) => change.task?.title)).toEqual(['older, committed last']);
    expect(await changes(user, second.through)).toEqual([]);
    // A cursor taken between the two still has the older one to deliver.
    expect((await changes(user, first.changes[0]!.after)).map((change) => change.task?.title)).toEqual(['older, committed last']);
  });

  it('counts a position as past pruning only if it may miss a pruned change: not for a transaction it saw running that still runs', async () => {
    const user = await signUpUser(t.server.url);
    // A transaction left open for longer than the retention (any database would do), and a change of the user's
    // written after it began that pruning has deleted.
    const old = await openWriter(user, 'written long ago');
    try {
      const { xid: running } = (await old.query<{ xid: string }>('select pg_current_xact_id()::text as xid')).rows[0]!;
      await createTask(user.api, { title: 'pruned' });
      const [{ xid: pruned }] = (
        await t.db.query<{ xid: string }>(
          `with gone as (delete from task_changes where owner_id = $1 returning owner_id, xid, id)
           insert into task_change_pruned (owner_id, xid, id) select owner_id, xid, id from gone returning xid::text`,
          [user.user.id],
        )
      ).rows as [{ xid: string }];
      const after = Number(pruned) + 1;
      // Issued while it runs: it names it as running (and nothing else, to be exact here).
      const naming = { xmax: after, xip: [Number(running)], partial: null };
      expect(await read(user, naming)).toMatchObject({ changes: [], pruned: false });
      expect(await read(user, { xmax: after, xip: [], partial: null })).toMatchObject({ pruned: false });
      expect(await read(user, { xmax: Number(pruned), xip: [], partial: null })).toMatchObject({ pruned: true });
      await old.query('commit');
      // Committed: what it wrote more than the retention ago could have been pruned since.
      expect(await read(user, naming)).toMatchObject({ pruned: true });
    } finally {
      await old.end();
    }
  });

  it('reads a transaction of many changes in batches, each change once', async () => {
    const user = await signUpUser(t.server.url);
    await t.db.query(
      `insert into tasks (id, created_at, updated_at, title, status, priority, tags, owner_id)
       select gen_random_uuid(), now(), now(), 'bulk ' || i, 'PENDING', 'MEDIUM', '{}', $1 from generate_series(1, 25) i`,
      [user.user.id],
    );
    const titles: string[] = [];
    let position = ORIGIN;
    for (let reads = 0; reads < 20; reads++) {
      const batch = await read(user, position, 4);
      titles.push(...batch.changes.map((change) => change.task!.title));
      position = batch.through;
      if (batch.changes.length < 4) break;
    }
    expect(titles).toEqual(Array.from({ length: 25 }, (_, i) => `bulk ${i + 1}`));
  });

  it('lets one user’s writers commit without waiting for each other, and logs what rolled back nowhere', async () => {
    const user = await signUpUser(t.server.url);
    const open = await openWriter(user, 'rolled back');
    try {
      // Under a per-user counter these would queue behind the open transaction.
      const created = await Promise.all(Array.from({ length: 10 }, (_, i) => createTask(user.api, { title: `raced ${i}` })));
      expect((await changes(user)).map((change) => change.taskId).sort()).toEqual(created.map((task) => task.id).sort());
      await open.query('rollback');
      const logged = await changes(user);
      expect(logged.map((change) => change.taskId).sort()).toEqual(created.map((task) => task.id).sort());
      expect(increasing(logged)).toBe(true);
    } finally {
      await open.end();
    }
  });

  it('logs concurrent changes of one task in the order they committed', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'contended' });
    await Promise.all(Array.from({ length: 10 }, (_, i) => user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `title ${i}` } })));
    const logged = await changes(user);
    const { rows } = await t.db.query<{ title: string }>('select title from tasks where id = $1', [task.id]);
    expect(logged).toHaveLength(11);
    // Each update started from the row the one before it committed: the last logged is the row as it stands.
    expect(logged.at(-1)!.task?.title).toBe(rows[0]!.title);
    expect(new Set(logged.map((change) => change.task?.title)).size).toBe(11);
  });

  it('logs a change made outside the server (unless its session turned the log off), and nothing when a user is deleted with their tasks', async () => {
    const user = await signUpUser(t.server.url);
    await createTask(user.api, { title: 'by the API' });
    await t.db.query(`update tasks set title = 'by hand' where owner_id = $1`, [user.user.id]);
    expect((await changes(user)).map((change) => [change.kind, change.task?.title])).toEqual([
      ['CREATED', 'by the API'],
      ['UPDATED', 'by hand'],
    ]);
    const quiet = new pg.Client({ connectionString: t.db.directUrl, options: '-c todo.log_task_changes=off' });
    await quiet.connect();
    await quiet.query(`update tasks set title = 'unlogged' where owner_id = $1`, [user.user.id]);
    await quiet.end();
    expect(await changes(user)).toHaveLength(2);
    await t.db.query('delete from users where id = $1', [user.user.id]);
    expect((await t.db.query('select 1 from task_changes where owner_id = $1', [user.user.id])).rowCount).toBe(0);
  });
});
