// `npm run bench:startup [-- --starts 5]`: how soon the production entry answers after it is spawned. Each start is
// `node dist/src/main.js` from a production install, in production mode with the image's NODE_OPTIONS, against a
// database that is up with its migrations applied (the first, unmeasured start applies them). Polls /health/live
// and /health/ready every 5 ms and prints the median time from spawn to the first 200 of each, and of the log's
// "server ready", over `--starts` starts.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort } from '../src/embedded/embedded.js';
import { temporaryProductionInstall } from '../scripts/production-install.js';
import { benchDatabase, IMAGE_NODE_OPTIONS, startServerProcess } from './support.js';

const { values } = parseArgs({ options: { starts: { type: 'string', default: '5' } } });
const starts = Number(values.starts);

const database = await benchDatabase('bench_startup');
// Migrations applied once, outside the measured starts.
await (await startServerProcess(database.url)).stop();
const install = await temporaryProductionInstall();

/** Milliseconds from spawn to the first 200 of `path`, polled every 5 ms, or NaN if the process exits first. */
async function firstAnswer(url: string, path: string, spawnedAt: number, exited: () => boolean): Promise<number> {
  while (!exited()) {
    try {
      if ((await fetch(`${url}${path}`)).status === 200) return performance.now() - spawnedAt;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  return NaN;
}

const samples: { live: number; ready: number; logged: number }[] = [];
for (let i = 0; i < starts; i++) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: install,
    env: {
      ...process.env,
      NODE_OPTIONS: IMAGE_NODE_OPTIONS,
      NODE_ENV: 'production',
      DATABASE_URL: database.url,
      JWT_SECRET: randomBytes(24).toString('hex'),
      LOG_LEVEL: 'info',
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const logged = new Promise<number>((resolve) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk;
      if (buffered.includes('"msg":"server ready"')) resolve(performance.now() - spawnedAt);
    });
  });
  const [live, ready] = await Promise.all([
    firstAnswer(url, '/health/live', spawnedAt, () => exited),
    firstAnswer(url, '/health/ready', spawnedAt, () => exited),
  ]);
  samples.push({ live, ready, logged: await logged });
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}
database.stop();

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const line = (name: 'live' | 'ready' | 'logged') =>
  `${name.padEnd(6)} median ${(median(samples.map((s) => s[name])) / 1000).toFixed(2)} s  (${samples.map((s) => (s[name] / 1000).toFixed(2)).join(', ')})`;
process.stdout.write(`${starts} starts of node dist/src/main.js (production, NODE_OPTIONS="${IMAGE_NODE_OPTIONS}"), from spawn:\n`);
process.stdout.write(`${line('live')}\n${line('ready')}\n${line('logged')}  ("server ready" in the log)\n`);
process.exit(0);
