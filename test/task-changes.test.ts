import pg from 'pg';
import { signUpUser } from './support/api.js';
import { serverForTests } from './support/server.js';
import { COMPLETE_TASK, CREATE_TASK, DELETE_TASK, UPDATE_TASK, createTask, type TaskView } from './support/tasks.js';
import { changesAfter, decodeChangeCursor, encodeChangeCursor } from '../src/modules/tasks/task.changes.js';
import { waitFor } from './support/wait.js';
import { lockWaiters } from './support/database.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

describe('the task change log', () => {
  // Room in the pool for ten writers waiting on one lock.
  const t = serverForTests({ env: { DB_POOL_MAX: '12' } });
  const changes = (user: User, after = 0, limit = 1000) => changesAfter(t.server.orm.em.fork(), user.user.id, after, limit);
  const seqs = async (user: User) => (await changes(user)).map((change) => change.seq);
  const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('logs one change per mutation, numbered from 1, with its kind and task', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'logged' });
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: 'renamed' } });
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    await user.api.ok(DELETE_TASK, { id: task.id });
    const logged = await changes(user);
    expect(logged.map(({ seq, kind, taskId }) => ({ seq, kind, taskId }))).toEqual([
      { seq: 1, kind: 'CREATED', taskId: task.id },
      { seq: 2, kind: 'UPDATED', taskId: task.id },
      { seq: 3, kind: 'UPDATED', taskId: task.id },
      { seq: 4, kind: 'DELETED', taskId: task.id },
    ]);
    for (const change of logged) expect(Math.abs(change.at.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('logs nothing for a mutation that fails', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'kept' });
    expect(await user.api.code(UPDATE_TASK, { id: task.id, input: { title: '   ' } })).toBe('BAD_USER_INPUT');
    expect(await user.api.code(COMPLETE_TASK, { id: '00000000-0000-4000-8000-000000000000' })).toBe('NOT_FOUND');
    expect(await user.api.code(DELETE_TASK, { id: task.id.replace(/.$/, (c) => (c === '0' ? '1' : '0')) })).toBe('NOT_FOUND');
    expect(await seqs(user)).toEqual([1]);
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    expect(await seqs(user)).toEqual([1, 2]);
  });

  it('keeps each user’s changes and numbering to that user', async () => {
    const [alice, bob] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
    const ofAlice = await createTask(alice.api, { title: 'alice' });
    const ofBob = await createTask(bob.api, { title: 'bob' });
    await bob.api.ok(COMPLETE_TASK, { id: ofBob.id });
    expect(await bob.api.code(DELETE_TASK, { id: ofAlice.id })).toBe('NOT_FOUND');
    await alice.api.ok(DELETE_TASK, { id: ofAlice.id });
    expect((await changes(alice)).map(({ seq, taskId }) => [seq, taskId])).toEqual([
      [1, ofAlice.id],
      [2, ofAlice.id],
    ]);
    expect((await changes(bob)).map(({ seq, taskId }) => [seq, taskId])).toEqual([
      [1, ofBob.id],
      [2, ofBob.id],
    ]);
  });

  it('reads only the changes after a seq, in order, up to the limit', async () => {
    const user = await signUpUser(t.server.url);
    for (let i = 0; i < 5; i++) await createTask(user.api, { title: `task ${i}` });
    expect((await changes(user, 2)).map((change) => change.seq)).toEqual([3, 4, 5]);
    expect((await changes(user, 2, 2)).map((change) => change.seq)).toEqual([3, 4]);
    expect(await changes(user, 5)).toEqual([]);
  });

  it('numbers concurrent writers of one user gaplessly, in the order they commit', async () => {
    const user = await signUpUser(t.server.url);
    const holder = new pg.Client({ connectionString: t.db.directUrl });
    await holder.connect();
    let created: TaskView[];
    const snapshots: number[][] = [];
    try {
      // The test holds the user's counter row, so every writer queues behind it, then behind each other.
      await holder.query('begin');
      await holder.query('insert into task_change_seqs (owner_id, seq) values ($1, 0)', [user.user.id]);
      const writes = Array.from({ length: 10 }, (_, i) => user.api.ok<{ createTask: TaskView }>(CREATE_TASK, { input: { title: `raced ${i}` } }));
      await waitFor(async () => (await lockWaiters(holder)) === 10, 5000);
      await holder.query('commit');
      // A reader polling while they commit must only ever see 1..k: a later seq never becomes visible before an earlier one.
      const visible = async () => (await t.db.query<{ seq: string }>('select seq from task_changes where owner_id = $1 order by seq', [user.user.id])).rows.map((row) => Number(row.seq));
      await waitFor(async () => {
        snapshots.push(await visible());
        return snapshots.at(-1)!.length === 10;
      }, 10_000, 0);
      created = (await Promise.all(writes)).map((result) => result.createTask);
    } finally {
      await holder.end();
    }
    for (const seen of snapshots) expect(seen).toEqual(oneToN(seen.length));
    const logged = await changes(user);
    expect(logged.map((change) => change.seq)).toEqual(oneToN(10));
    expect(logged.every((change) => change.kind === 'CREATED')).toBe(true);
    expect(logged.map((change) => change.taskId).sort()).toEqual(created.map((task) => task.id).sort());
  });

  it('numbers 20 parallel mutations of two users gaplessly, per user', async () => {
    const users = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
    const tasks = await Promise.all(users.map((user) => createTask(user.api, { title: 'shared' })));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const owner = i % 2;
        const { api } = users[owner]!;
        const id = tasks[owner]!.id;
        return i % 4 < 2 ? api.ok(UPDATE_TASK, { id, input: { title: `title ${i}` } }) : createTask(api, { title: `new ${i}` });
      }),
    );
    for (const user of users) expect(await seqs(user)).toEqual(oneToN(11));
  });
});

describe('change cursors', () => {
  it('round-trip a seq', () => {
    for (const seq of [0, 1, 42, Number.MAX_SAFE_INTEGER]) expect(decodeChangeCursor(encodeChangeCursor(seq))).toBe(seq);
  });

  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/'],
    ['a task list cursor', Buffer.from(JSON.stringify(['CREATED_AT', 'DESC', null, 'x'])).toString('base64url')],
    ['a negative seq', Buffer.from('c:-1').toString('base64url')],
    ['a leading zero', Buffer.from('c:01').toString('base64url')],
    ['a seq past the safe integers', Buffer.from('c:9007199254740993').toString('base64url')],
    ['trailing bits', `${encodeChangeCursor(5)}x`],
  ])('rejects %s as BAD_USER_INPUT on after', (_, cursor) => {
    expect(() => decodeChangeCursor(cursor)).toThrow(expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT', field: 'after' } }));
  });
});
