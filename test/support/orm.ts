import { Migrator } from '@mikro-orm/migrations';
import { MikroORM } from '@mikro-orm/postgresql';
import { SeedManager } from '@mikro-orm/seeder';
import { parseConfig, type Config } from '../../src/config/config.js';
import { ormOptions } from '../../src/db/orm-options.js';
import { ENTITIES } from '../../src/entities.js';
import { createLogger } from '../../src/observability/logger.js';

export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl, BCRYPT_ROUNDS: '4', ...env });
}

/** The server's own ORM configuration on `databaseUrl` (for requests, or for migrations), with the migrator and the seeder, connected. */
export async function openOrm(
  databaseUrl: string,
  env: Record<string, string> = {},
  purpose: 'requests' | 'migrations' = 'requests',
): Promise<MikroORM> {
  const config = testConfig(databaseUrl, env);
  const orm = await MikroORM.init({
    ...ormOptions(config, databaseUrl, createLogger(config), { purpose, entities: ENTITIES }),
    extensions: [Migrator, SeedManager],
    preferTs: true,
  });
  await orm.connect();
  return orm;
}
