import { getOperationAST, GraphQLError, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { checkOperation, tooComplex, type QueryLimits, type QueryMeasure } from './query-limits.js';

export interface DocumentLimits extends QueryLimits {
  /** The parser stops past this many tokens: the size limit, and the bound on everything that follows. */
  maxTokens: number;
}

/** The parser's words when it stops at `maxTokens` (graphql 16 spells "more that"). */
const TOKEN_LIMIT = /^Syntax Error: Document contains more th[ae][nt] \d+ tokens/;

/** Parsed documents are kept by their text, up to this much text in all (least recently used first out). */
const CACHE_CHARS = 1_000_000;

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
    const document = this.#parse(query);
    if (!document) return undefined;
    const operation = getOperationAST(document, typeof operationName === 'string' ? operationName : undefined);
    if (!operation) return undefined;
    const values = variables !== null && typeof variables === 'object' ? (variables as Record<string, unknown>) : {};
    return checkOperation(this.schema, document, operation, values, this.limits);
  }

  #parse(query: string): DocumentNode | undefined {
    const cached = this.#documents.get(query);
    if (cached) {
      this.#documents.delete(query);
      this.#documents.set(query, cached);
      return cached;
    }
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.limits.maxTokens, noLocation: true });
    } catch (error) {
      if (error instanceof GraphQLError && TOKEN_LIMIT.test(error.message)) {
        throw tooComplex(`The document is over the size limit of ${this.limits.maxTokens} tokens`, { maxTokens: this.limits.maxTokens });
      }
      return undefined;
    }
    this.#documents.set(query, document);
    this.#cachedChars += query.length;
    for (const [text] of this.#documents) {
      if (this.#cachedChars <= CACHE_CHARS) break;
      this.#documents.delete(text);
      this.#cachedChars -= text.length;
    }
    return document;
  }
}
