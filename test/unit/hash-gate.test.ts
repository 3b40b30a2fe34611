import { HashGate } from '../../src/modules/users/password.js';

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
