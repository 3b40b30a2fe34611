import type { CodegenConfig } from '@graphql-codegen/cli';

/** Typed client operations from the committed schema, as a frontend team would set it up: `npm run codegen`. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/client/operations/*.graphql'],
  emitLegacyCommonJSImports: false,
  generates: {
    'examples/client/gql/': {
      preset: 'client',
      // persisted-documents.json: the manifest a server started with TRUSTED_DOCUMENTS accepts (sha256 of each text).
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: { scalars: { DateTime: 'string' }, enumsAsTypes: true, useTypeImports: true },
    },
  },
};

export default config;
