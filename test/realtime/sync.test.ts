import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { ApiError, createTaskOnce, persistedClient, TaskListCopy, type Request } from '../../examples/client/client.js';
import {
  CompleteTaskDocument,
  CreateTaskDocument,
  DeleteTaskDocument,
  SignUpDocument,
  UpdateTaskDocument,
} from '../../examples/client/gql/graphql.js';
import { uniqueEmail } from '../support/api.js';
import { instancesForTests } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'shared-signing-key-for-every-instance-0123';
const manifest = join(PROJECT_ROOT, 'examples/client/gql/persisted-documents.json');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the task list on several devices (examples/client)', () => {
  // Behind the PgBouncer of `npm run test:pgbouncer` when it runs.
  const t = instancesForTests(SECRET, { TRUSTED_DOCUMENTS: manifest });

  it('is exactly the server’s list at rest on every device that loaded it and followed its changesCursor, however writers on two instances raced them', async () => {
    const urls = [t.a.url, t.b.url];
    const { signUp } = await persistedClient(`${t.a.url}/graphql`)(SignUpDocument, {
      input: { email: uniqueEmail('devices'), password: 'correct horse battery' },
    });
    const requests: Request[] = urls.map((url) => persistedClient(`${url}/graphql`, signUp.token));
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await requests[i % 2]!(CreateTaskDocument, { input: { title: `seed ${i}` } })).createTask.id);

    let writing = true;
    const writer = async (w: number) => {
      const request = requests[w % 2]!;
      for (let n = 0; writing; n++) {
        const id = ids[(n * 7 + w * 3) % ids.length]!;
        try {
          if (n % 4 === 0) ids.push((await createTaskOnce(request, { title: `w${w}.${n}` })).id);
          else if (n % 4 === 1) await request(UpdateTaskDocument, { id, input: { title: `w${w}.${n}`, tags: [`t${n % 3}`] } });
          else if (n % 4 === 2) await request(CompleteTaskDocument, { id });
          else if (n % 12 === 3) await request(DeleteTaskDocument, { id });
        } catch (error) {
          // Another writer deleted it first.
          if (!(error instanceof ApiError) || error.errors[0]?.extensions?.code !== 'NOT_FOUND') throw error;
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);

    // Devices load the list a few tasks a page (each page in a later snapshot) and follow the feed on either
    // instance, one after another while the writers run; the last four stay.
    const devices: { copy: TaskListCopy; follower: { stop: () => Promise<void> } }[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const copy = new TaskListCopy(requests[i % 2]!, 5);
        const follower = await copy.follow(`${urls[(i + 1) % 2]!.replace(/^http/, 'ws')}/graphql`, () => signUp.token);
        devices.push({ copy, follower });
        if (devices.length > 4) await devices.shift()!.follower.stop();
        await sleep(100);
      }
    } finally {
      writing = false;
      await Promise.all(writers);
    }

    const { rows } = await t.db.query<{ id: string; version: number; title: string; status: string }>(
      'select id, version, title, status from tasks where owner_id = (select id from users where email = $1)',
      [signUp.user.email],
    );
    const server = Object.fromEntries(rows.map(({ id, ...task }) => [id, task]));
    const copyOf = ({ copy }: (typeof devices)[number]) =>
      Object.fromEntries([...copy.tasks.values()].map(({ id, version, title, status }) => [id, { version, title, status }]));
    expect(rows.length).toBeGreaterThan(12);
    try {
      await waitFor(
        () => devices.every((device) => JSON.stringify(sorted(copyOf(device))) === JSON.stringify(sorted(server))),
        15_000,
      ).catch(() => undefined);
      for (const device of devices) expect(sorted(copyOf(device))).toEqual(sorted(server));
    } finally {
      await Promise.all(devices.map((device) => device.follower.stop()));
    }
  }, 60_000);
});

function sorted<T>(record: Record<string, T>): [string, T][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}
