import pg from 'pg';
import { signUpUser } from './support/api.js';
import { serverForTests } from './support/server.js';
import { COMPLETE_TASK, DELETE_TASK, UPDATE_TASK, createTask } from './support/tasks.js';
import { waitFor } from './support/wait.js';
import { changesAfter, decodeChangeCursor, encodeChangeCursor, isAfter, type ChangePosition, type TaskChange } from '../src/modules/tasks/task.changes.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

const START: ChangePosition = { xid: 0, id: 0 };
const increasing = (changes: TaskChange[]) => changes.every((change, i) => i === 0 || isAfter(change.position, changes[i - 1]!.position));

describe('the task change log', () => {
  const t = serverForTests();
  const read = (user: User, after = START, limit = 1000) => changesAfter(t.server.orm.em.fork(), user.user.id, after, limit);
  /**
   * What the log delivers once nothing older holds it back (the horizon is the cluster's: another test file's
   * open transaction holds it too, for a moment).
   */
  const changes = async (user: User, after = START, limit = 1000) => {
    let result = await read(user, after, limit);
    await waitFor(async () => !(result = await read(user, after, limit)).heldBack, 10_000);
    return result.changes;
  };
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
    expect(titles(await changes(user, all[1]!.position))).toEqual(['task 2', 'task 3', 'task 4']);
    expect(titles(await changes(user, all[1]!.position, 2))).toEqual(['task 2', 'task 3']);
    expect(await changes(user, all[4]!.position)).toEqual([]);
  });

  it('holds back a change that committed while an older transaction is still open, so that a reader never skips one that commits late', async () => {
    const user = await signUpUser(t.server.url);
    const seen = await changes(user);
    const older = await openWriter(user, 'older, committed last');
    try {
      await createTask(user.api, { title: 'newer, committed first' });
      // Committed and visible, but an older transaction may still log a change before it: not yet deliverable.
      expect(await read(user)).toMatchObject({ changes: seen, heldBack: true, pruned: false });
      await older.query('commit');
    } finally {
      await older.end();
    }
    expect((await changes(user)).map((change) => change.task?.title)).toEqual(['older, committed last', 'newer, committed first']);
  });

  it('lets one user’s writers commit without waiting for each other, and logs what rolled back nowhere', async () => {
    const user = await signUpUser(t.server.url);
    const open = await openWriter(user, 'rolled back');
    try {
      // Under a per-user counter these would queue behind the open transaction.
      const created = await Promise.all(Array.from({ length: 10 }, (_, i) => createTask(user.api, { title: `raced ${i}` })));
      expect(await read(user)).toMatchObject({ changes: [], heldBack: true });
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

describe('change cursors', () => {
  it('round-trip a position', () => {
    for (const position of [START, { xid: 1, id: 1 }, { xid: 4_294_967_296 + 42, id: 7 }, { xid: Number.MAX_SAFE_INTEGER, id: Number.MAX_SAFE_INTEGER }]) {
      expect(decodeChangeCursor(encodeChangeCursor(position))).toEqual(position);
    }
  });

  it('answers a cursor of the log before positions (a per-user seq) with RESYNC_REQUIRED', () => {
    expect(() => decodeChangeCursor(Buffer.from('c:5').toString('base64url'))).toThrow(expect.objectContaining({ extensions: { code: 'RESYNC_REQUIRED' } }));
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/'],
    ['a task list cursor', Buffer.from(JSON.stringify(['CREATED_AT', 'DESC', null, 'x'])).toString('base64url')],
    ['a negative id', Buffer.from('p:1:-1').toString('base64url')],
    ['a leading zero', Buffer.from('p:01:1').toString('base64url')],
    ['a missing id', Buffer.from('p:1').toString('base64url')],
    ['a xid past the safe integers', Buffer.from('p:9007199254740993:1').toString('base64url')],
    // "p:5:5" is 40 bits in 7 characters: the last one's two low bits are padding, ignored by the decoder.
    ['other padding bits', encodeChangeCursor({ xid: 5, id: 5 }).replace(/U$/, 'V')],
  ])('rejects %s as BAD_USER_INPUT on after', (_, cursor) => {
    expect(() => decodeChangeCursor(cursor)).toThrow(expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT', field: 'after' } }));
  });
});
