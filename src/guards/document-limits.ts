import { getOperationAST, GraphQLError, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { checkOperation, tooComplex, type QueryLimits, type QueryMeasure } from './query-limits.js';

export interface DocumentLimits extends QueryLimits {
  /** The parser stops past this many tokens: the size limit, and the bound on everything that follows. */
  maxTokens: number;
}

/** The parser's words when it stops at `maxTokens` (graphql 16 spells "more that"). */
const TOKEN_LIMIT = /^Syntax Error: Document contains more th[ae][nt] \d+ tokens/;

/**
 * Documents that passed are kept by their text, least recently used first out, up to this much text in all:
 * a parsed document takes about a hundred times its text, so this bounds the cache near 10 MB.
 */
const CACHE_CHARS = 100_000;

/**
 * The query limits for a document still in text form, before graphql validates it (validation of a hostile
 * document within the token limit can take a hundred milliseconds; this check takes a fraction of one).
 * Transports call it with what the client sent; the GraphQL pipeline then parses and validates on its own.
 */
export class DocumentLimitsGuard {
  readonly #documents = new Map<string, DocumentNode>();
  #cachedChars = 0;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: DocumentLimits,
  ) {}

  /**
   * The operation's measure, or QUERY_TOO_COMPLEX. Undefined when the document does not parse or names no
   * single operation: the pipeline reports that with its own codes, at no greater cost than this.
   */
  check(query: string, operationName: unknown, variables: unknown): QueryMeasure | undefined {
    const cached = this.#cached(query);
    const document = cached ?? this.#parse(query);
    if (!document) return undefined;
    const operation = getOperationAST(document, typeof operationName === 'string' ? operationName : undefined);
    if (!operation) return undefined;
    const values = variables !== null && typeof variables === 'object' ? (variables as Record<string, unknown>) : {};
    const measure = checkOperation(this.schema, document, operation, values, this.limits);
    if (!cached) this.#remember(query, document);
    return measure;
  }

  #cached(query: string): DocumentNode | undefined {
    const document = this.#documents.get(query);
    if (document) {
      this.#documents.delete(query);
      this.#documents.set(query, document);
    }
    return document;
  }

  #remember(query: string, document: DocumentNode): void {
    if (query.length > CACHE_CHARS / 10) return;
    this.#documents.set(query, document);
    this.#cachedChars += query.length;
    for (const [text] of this.#documents) {
      if (this.#cachedChars <= CACHE_CHARS) break;
      this.#documents.delete(text);
      this.#cachedChars -= text.length;
    }
  }

  #parse(query: string): DocumentNode | undefined {
    try {
      return parse(query, { maxTokens: this.limits.maxTokens, noLocation: true });
    } catch (error) {
      if (error instanceof GraphQLError && TOKEN_LIMIT.test(error.message)) {
        throw tooComplex(`The document is over the size limit of ${this.limits.maxTokens} tokens`, { maxTokens: this.limits.maxTokens });
      }
      return undefined;
    }
  }
}
