// The contract's production install, made in a folder: what the image's runtime stage holds and what
// `node dist/src/main.js` runs from. Used by the production-install test and by the benchmarks.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../src/config/app-version.js';

const run = promisify(execFile);

/** `dist/` as `npm run build` makes it (scripts/build.ts), `package.json` and `package-lock.json`, then `npm ci --omit=dev`. */
export async function productionInstall(dir: string): Promise<void> {
  await run(process.execPath, [join(PROJECT_ROOT, 'scripts/build.ts'), '--outDir', join(dir, 'dist')], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(PROJECT_ROOT, file), join(dir, file));
  await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } });
}

let shared: Promise<string> | undefined;

/** One production install in a temporary folder for this process, made on first use and removed at exit. */
export function temporaryProductionInstall(): Promise<string> {
  shared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'todo-production-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await productionInstall(dir);
    return dir;
  })();
  return shared;
}
