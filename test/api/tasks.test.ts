import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { COMPLETE_TASK, CREATE_TASK, createTask, DELETE_TASK, GET_TASK, UPDATE_TASK, type TaskView } from '../support/tasks.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

describe('tasks', () => {
  const t = serverForTests();
  let user: User;
  const rows = async () => (await t.db.query<{ n: number }>('select count(*)::int as n from tasks')).rows[0]!.n;

  beforeAll(async () => {
    user = await signUpUser(t.server.url);
  });

  describe('createTask', () => {
    it('refuses a valid token whose user no longer exists with UNAUTHENTICATED, and writes nothing', async () => {
      const gone = await signUpUser(t.server.url);
      await t.db.query('delete from users where id = $1', [gone.user.id]);
      expect(await gone.api.code(CREATE_TASK, { input: { title: 'orphan' } })).toBe('UNAUTHENTICATED');
      expect((await t.db.query('select 1 from tasks where owner_id = $1', [gone.user.id])).rowCount).toBe(0);
    });

    it('creates a task with defaults, owned by the caller', async () => {
      const task = await createTask(user.api, { title: '  Water the plants  ' });
      expect(task).toMatchObject({
        title: 'Water the plants',
        description: null,
        status: 'PENDING',
        priority: 'MEDIUM',
        tags: [],
        dueDate: null,
        completedAt: null,
        isOverdue: false,
        owner: { id: user.user.id, email: user.user.email },
      });
      expect(task.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(task.createdAt).toBe(task.updatedAt);
    });

    it('keeps every field given, with tags trimmed, lower-cased and de-duplicated', async () => {
      const dueDate = '2031-05-04T10:00:00.000Z';
      const task = await createTask(user.api, {
        title: 'Plan the trip',
        description: '  Keep the spaces  ',
        status: 'IN_PROGRESS',
        priority: 'URGENT',
        tags: [' Travel ', 'travel', 'PLANNING', 'planning '],
        dueDate,
      });
      expect(task).toMatchObject({
        description: '  Keep the spaces  ',
        status: 'IN_PROGRESS',
        priority: 'URGENT',
        tags: ['travel', 'planning'],
        dueDate,
        isOverdue: false,
      });
    });

    it('sets completedAt when created COMPLETED, and computes isOverdue', async () => {
      const done = await createTask(user.api, { title: 'Done already', status: 'COMPLETED', dueDate: '2020-01-01T00:00:00Z' });
      expect(Date.parse(done.completedAt!)).toBeGreaterThan(Date.now() - 60_000);
      expect(done.isOverdue).toBe(false);
      const late = await createTask(user.api, { title: 'Late', dueDate: '2020-01-01T00:00:00Z' });
      expect(late.isOverdue).toBe(true);
    });

    it('refuses each broken rule with BAD_USER_INPUT naming the field, and writes nothing', async () => {
      const before = await rows();
      const cases: [Record<string, unknown>, string][] = [
        [{ title: '' }, 'title'],
        [{ title: '    ' }, 'title'],
        [{ title: 't'.repeat(201) }, 'title'],
        [{ title: 'nul \u0000 inside' }, 'title'],
        [{ title: 'ok', description: 'd'.repeat(10_001) }, 'description'],
        [{ title: 'ok', tags: Array.from({ length: 21 }, (_, i) => `tag${i}`) }, 'tags'],
        [{ title: 'ok', tags: ['fine', '   '] }, 'tags'],
        [{ title: 'ok', tags: ['t'.repeat(51)] }, 'tags'],
      ];
      for (const [input, field] of cases) {
        const { status, errors } = await user.api.request(CREATE_TASK, { input });
        expect(status).toBe(200);
        expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
      expect(await rows()).toBe(before);
    });

    it('accepts the limits themselves', async () => {
      const task = await createTask(user.api, {
        title: 't'.repeat(200),
        description: 'd'.repeat(10_000),
        tags: Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(50, 'x')),
      });
      expect(task.tags).toHaveLength(20);
      const twentyAfterDedup = await createTask(user.api, {
        title: 'dupes',
        tags: [...Array.from({ length: 20 }, (_, i) => `t${i}`), 'T0'],
      });
      expect(twentyAfterDedup.tags).toHaveLength(20);
    });

    it('refuses a value of the wrong type with Apollo’s BAD_USER_INPUT and status 400', async () => {
      const result = await user.api.request(CREATE_TASK, { input: { title: 'x', priority: 'CRITICAL' } });
      expect(result.status).toBe(400);
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const date = await user.api.request(CREATE_TASK, { input: { title: 'x', dueDate: 'next tuesday' } });
      expect(date.status).toBe(400);
      expect(date.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });
  });

  describe('updateTask', () => {
    let task: TaskView;
    const update = (input: Record<string, unknown>) =>
      user.api.ok<{ updateTask: TaskView }>(UPDATE_TASK, { id: task.id, input }).then((r) => r.updateTask);

    beforeEach(async () => {
      task = await createTask(user.api, {
        title: 'Original',
        description: 'Some text',
        tags: ['a'],
        dueDate: '2031-01-01T00:00:00Z',
        priority: 'LOW',
      });
    });

    it('changes only the fields given', async () => {
      const updated = await update({ title: ' Renamed ' });
      expect(updated).toMatchObject({
        title: 'Renamed',
        description: 'Some text',
        tags: ['a'],
        dueDate: '2031-01-01T00:00:00.000Z',
        priority: 'LOW',
      });
      expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(task.updatedAt));
      expect(updated.createdAt).toBe(task.createdAt);
    });

    it('clears description and dueDate on an explicit null', async () => {
      const updated = await update({ description: null, dueDate: null });
      expect(updated).toMatchObject({ title: 'Original', description: null, dueDate: null });
      const { rows: stored } = await t.db.query('select description, due_date from tasks where id = $1', [task.id]);
      expect(stored[0]).toEqual({ description: null, due_date: null });
    });

    it('refuses null for fields that cannot be empty', async () => {
      for (const field of ['title', 'status', 'priority', 'tags']) {
        const { errors } = await user.api.request(UPDATE_TASK, { id: task.id, input: { [field]: null } });
        expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
    });

    it('sets completedAt when the task becomes COMPLETED and clears it when it leaves', async () => {
      const done = await update({ status: 'COMPLETED' });
      expect(done.completedAt).not.toBeNull();
      const again = await update({ status: 'COMPLETED', title: 'Still done' });
      expect(again.completedAt).toBe(done.completedAt);
      const reopened = await update({ status: 'IN_PROGRESS' });
      expect(reopened.completedAt).toBeNull();
    });

    it('checks every rule before writing anything', async () => {
      const { errors } = await user.api.request(UPDATE_TASK, { id: task.id, input: { description: 'changed', title: '   ' } });
      expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title' });
      const { task: stored } = await user.api.ok<{ task: TaskView }>(GET_TASK, { id: task.id });
      expect(stored.description).toBe('Some text');
      expect(stored.updatedAt).toBe(task.updatedAt);
    });

    it('answers NOT_FOUND for an id that does not exist', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
        expect(await user.api.code(UPDATE_TASK, { id, input: { title: 'x' } })).toBe('NOT_FOUND');
      }
    });
  });

  describe('completeTask and deleteTask', () => {
    it('completes a task once, keeping the first completion time', async () => {
      const task = await createTask(user.api, { title: 'Finish me', dueDate: '2020-01-01T00:00:00Z' });
      expect(task.isOverdue).toBe(true);
      const { completeTask } = await user.api.ok<{ completeTask: TaskView }>(COMPLETE_TASK, { id: task.id });
      expect(completeTask).toMatchObject({ status: 'COMPLETED', isOverdue: false });
      const { completeTask: again } = await user.api.ok<{ completeTask: TaskView }>(COMPLETE_TASK, { id: task.id });
      expect(again.completedAt).toBe(completeTask.completedAt);
    });

    it('deletes a task and returns its id; a second delete is NOT_FOUND', async () => {
      const task = await createTask(user.api, { title: 'Delete me' });
      expect(await user.api.ok(DELETE_TASK, { id: task.id })).toEqual({ deleteTask: task.id });
      expect(await user.api.ok(GET_TASK, { id: task.id })).toEqual({ task: null });
      expect(await user.api.code(DELETE_TASK, { id: task.id })).toBe('NOT_FOUND');
      expect(await user.api.code(COMPLETE_TASK, { id: task.id })).toBe('NOT_FOUND');
    });
  });

  describe('task', () => {
    it('returns the task, or null for an unknown or malformed id', async () => {
      const task = await createTask(user.api, { title: 'Find me' });
      expect((await user.api.ok<{ task: TaskView }>(GET_TASK, { id: task.id })).task).toEqual(task);
      expect(await user.api.ok(GET_TASK, { id: '00000000-0000-4000-8000-000000000000' })).toEqual({ task: null });
      expect(await user.api.ok(GET_TASK, { id: 'definitely not a uuid' })).toEqual({ task: null });
    });
  });
});
