import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed client operations from the committed schema, as a frontend team would set it up: `npm run codegen`. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/client/operations/*.graphql'],
  emitLegacyCommonJSImports: false,
  generates: {
    'examples/client/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { scalars: { DateTime: 'string' }, enumsAsTypes: true, useTypeImports: true },
    },
  },
};

export default config;
