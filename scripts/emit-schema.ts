// Writes schema.graphql from the TypeGraphQL schema: `npm run schema:emit`.
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { buildAppSchema, printAppSchema } from '../src/schema.js';

const file = join(PROJECT_ROOT, 'schema.graphql');
writeFileSync(file, printAppSchema(await buildAppSchema()));
process.stdout.write(`wrote ${file}\n`);
