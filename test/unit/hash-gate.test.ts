import { HashGate, unmatchableHash, verifyPassword } from '../../src/modules/users/password.js';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('the password-hashing gate', () => {
  it('runs at most `concurrency` hashes at once and lets the waiting ones in, in order', async () => {
    const gate = new HashGate(2, 10, 5000);
    const releases = [deferred(), deferred(), deferred()];
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const jobs = releases.map((release, i) =>
      gate.run(async () => {
        running += 1;
        most = Math.max(most, running);
        order.push(i);
        await release.promise;
        running -= 1;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1]);
    releases[0]!.resolve();
    await jobs[0];
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 2]);
    releases[1]!.resolve();
    releases[2]!.resolve();
    await Promise.all(jobs);
    expect(most).toBe(2);
  });

  it('refuses with RATE_LIMITED at once when the queue is full, and after the wait when it is not', async () => {
    const gate = new HashGate(1, 1, 50);
    const held = deferred();
    const running = gate.run(() => held.promise);
    const waiting = gate.run(async () => 'late');
    await expect(gate.run(async () => 'over')).rejects.toMatchObject({ extensions: { code: 'RATE_LIMITED' } });
    await expect(waiting).rejects.toMatchObject({ extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 1 } });
    held.resolve();
    await running;
    await expect(gate.run(async () => 'free again')).resolves.toBe('free again');
  });
});

describe('the hash an unknown email is compared with', () => {
  it('has the configured cost and a salt bcrypt accepts, so comparing with it does the whole work; nothing matches it', async () => {
    const bcrypt = (await import('bcrypt')).default;
    const hash = unmatchableHash(4);
    expect(hash).toMatch(/^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    expect(bcrypt.getRounds(hash)).toBe(4);
    // bcrypt compares only after hashing with the salt, and hashes only with a salt of this form: hashing with it
    // succeeds, where a malformed salt is refused without any work.
    await expect(bcrypt.hash('password', hash.slice(0, 29))).resolves.toMatch(/^\$2b\$04\$/);
    await expect(bcrypt.hash('password', '$2b$04$short')).rejects.toThrow(/Invalid salt/);
    expect(await verifyPassword('password', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
    expect(unmatchableHash(4)).not.toBe(hash);
  });
});
