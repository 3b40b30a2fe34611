import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GraphQLError } from 'graphql';

/** The GraphQL parameters of a request, as the client sent them (a POST body, or a GET's query string). */
export interface GraphQLParams {
  query?: unknown;
  documentId?: unknown;
  extensions?: unknown;
  [key: string]: unknown;
}

const SHA256 = /^(?:sha256:)?([0-9a-f]{64})$/;

export const persistedQueryNotFound = () =>
  new GraphQLError('Only the operations of the trusted documents manifest run here', {
    extensions: { code: 'PERSISTED_QUERY_NOT_FOUND', http: { status: 400 } },
  });

/**
 * Trusted documents (`TRUSTED_DOCUMENTS`): only the operations of a persisted-documents manifest run. The
 * manifest is what GraphQL Code Generator's client preset writes with `persistedDocuments` and sha256:
 * `{ "sha256:<hex>": "<document text>" }`. A client names a document by hash, as `documentId` or in Apollo
 * Client's persisted-query extension, or sends its exact text; anything else is PERSISTED_QUERY_NOT_FOUND.
 */
export class TrustedDocuments {
  readonly #byHash = new Map<string, string>();
  readonly #texts = new Set<string>();

  constructor(manifest: Record<string, string>) {
    for (const [key, text] of Object.entries(manifest)) {
      const hash = SHA256.exec(key)?.[1];
      if (!hash || typeof text !== 'string' || createHash('sha256').update(text).digest('hex') !== hash) {
        throw new Error(`the trusted documents manifest has an entry whose key is not the sha256 of its text: ${key.slice(0, 80)}`);
      }
      this.#byHash.set(hash, text);
      this.#texts.add(text);
    }
  }

  static load(path: string): TrustedDocuments {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`TRUSTED_DOCUMENTS: cannot read the manifest ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
      throw new Error(`TRUSTED_DOCUMENTS: ${path} is not a persisted-documents manifest (an object of hash to document)`);
    }
    return new TrustedDocuments(manifest as Record<string, string>);
  }

  get size(): number {
    return this.#byHash.size;
  }

  /**
   * The document text the request names, with `query` set to it and the hash removed, so that the GraphQL
   * pipeline sees an ordinary request; PERSISTED_QUERY_NOT_FOUND when it names nothing in the manifest.
   */
  resolve(params: GraphQLParams): GraphQLParams {
    const { documentId, extensions, query, ...rest } = params;
    const { persistedQuery, ...otherExtensions } = (extensions ?? {}) as { persistedQuery?: { sha256Hash?: unknown } };
    const hash = documentId ?? persistedQuery?.sha256Hash;
    let text: string | undefined;
    if (hash !== undefined) {
      const hex = typeof hash === 'string' ? SHA256.exec(hash)?.[1] : undefined;
      text = hex ? this.#byHash.get(hex) : undefined;
      if (text === undefined || (query !== undefined && query !== text)) throw persistedQueryNotFound();
    } else {
      if (typeof query !== 'string' || !this.#texts.has(query)) throw persistedQueryNotFound();
      text = query;
    }
    return { ...rest, query: text, ...(Object.keys(otherExtensions).length > 0 ? { extensions: otherExtensions } : {}) };
  }
}
