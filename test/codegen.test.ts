import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generate } from '@graphql-codegen/cli';
import config from '../codegen.js';
import { firstOverduePage } from '../examples/client/client.js';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { signUpUser } from './support/api.js';
import { serverForTests } from './support/server.js';
import { createTask } from './support/tasks.js';

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
    await expect(promisify(execFile)(process.execPath, [tsc, '-p', 'examples/client/tsconfig.json'], { cwd: PROJECT_ROOT })).resolves.toBeDefined();
  });

  describe('against the running server', () => {
    const t = serverForTests();

    it('work end to end', async () => {
      const user = await signUpUser(t.server.url);
      await createTask(user.api, { title: 'Overdue one', dueDate: '2020-02-02T00:00:00Z', tags: ['x'] });
      const page = await firstOverduePage(`${t.server.url}/graphql`, user.user.email, user.password);
      expect(page).toEqual([expect.objectContaining({ title: 'Overdue one', isOverdue: true, tags: ['x'], status: 'PENDING' })]);
    });
  });
});
