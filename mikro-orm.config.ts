// The MikroORM CLI's configuration: the server's own options over the direct (unpooled) URL. When DATABASE_URL
// is unset it starts the embedded PostgreSQL under .data/ (or joins a running `npm start`), as the server does.
import 'reflect-metadata';
import { Migrator } from '@mikro-orm/migrations';
import { SeedManager } from '@mikro-orm/seeder';
import { loadConfig } from './src/config/config.js';
import { resolveDatabase } from './src/db/database-target.js';
import { migrationUrl } from './src/db/migrate.js';
import { ENTITIES } from './src/entities.js';
import { ormOptions } from './src/db/orm-options.js';
import { createLogger } from './src/observability/logger.js';

const config = loadConfig();
const logger = createLogger(config);
const database = await resolveDatabase(config, logger);
process.once('exit', () => database.stop());

// Operator commands (migrations, seeds) run without the statement timeout, over the direct URL only.
export default {
  ...ormOptions(config, migrationUrl(database.directUrl), logger, { purpose: 'migrations', entities: ENTITIES }),
  extensions: [Migrator, SeedManager],
  ensureDatabase: true,
};
