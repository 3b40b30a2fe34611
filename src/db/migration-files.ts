import { readdirSync } from 'node:fs';

/** Names of the migrations this build ships, as MikroORM records them (file name without extension). */
export function shippedMigrations(dir: string): string[] {
  const names = readdirSync(dir)
    .filter((file) => /^Migration.*\.(ts|js)$/.test(file) && !file.endsWith('.d.ts'))
    .map((file) => file.replace(/\.(ts|js)$/, ''));
  return [...new Set(names)].sort();
}
