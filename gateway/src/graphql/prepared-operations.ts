import { createHash } from 'node:crypto';
import {
  GraphQLError,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SourceLocation,
} from 'graphql';
import type { ErrorCode } from '@aifactory/errors';
import { measureOperation, type OperationShape } from './operation-shape.js';

/** Operation limits (defaults after Apollo Router's). */
export interface OperationLimits {
  depth: number;
  height: number;
  aliases: number;
  rootFields: number;
  tokens: number;
}

/** One reason a document is refused, before any subgraph is called. */
export interface DocumentProblem {
  code: ErrorCode;
  message: string;
  locations?: readonly SourceLocation[];
}

export class DocumentRefused extends Error {
  constructor(readonly problems: DocumentProblem[]) {
    super(problems[0]?.message ?? 'Document refused');
    this.name = 'DocumentRefused';
  }
}

export interface PreparedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | null;
  /** sha256 of the query text; the gateway's query-plan cache is keyed by it. */
  queryHash: string;
  shape: OperationShape;
}

interface ParsedDocument {
  document: DocumentNode;
  queryHash: string;
  validated?: readonly DocumentProblem[];
  operations: Map<string, PreparedOperation | DocumentProblem[]>;
}

// graphql-js words it "contains more that N tokens"; match either spelling.
const TOKEN_LIMIT_MESSAGE = /contains more th(?:an|at) \d+ tokens/;

function locationsOf(error: GraphQLError): { locations?: readonly SourceLocation[] } {
  return error.locations ? { locations: error.locations } : {};
}

/**
 * Parses, measures and validates each distinct document once. Everything
 * here depends only on the document and the schema, never on the caller,
 * so the verdicts are cached: a repeated operation costs one map lookup.
 * Limits are checked before validation because validating an abusive
 * document is itself the expensive part.
 */
export class PreparedOperations {
  private readonly documents = new Map<string, ParsedDocument | DocumentProblem[]>();
  private cachedChars = 0;

  /**
   * Bounded by entries and by the total length of the cached texts, so
   * callers sending many distinct large documents cannot grow it without end.
   */
  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: OperationLimits,
    private readonly maxEntries = 2_000,
    private readonly maxChars = 32 * 1024 * 1024,
  ) {}

  /** The operation to run, or DocumentRefused with every problem found. */
  prepare(query: string, operationName: string | undefined): PreparedOperation {
    const parsed = this.parsed(query);
    if (Array.isArray(parsed)) throw new DocumentRefused(parsed);
    const key = operationName ?? '';
    let prepared = parsed.operations.get(key);
    if (!prepared) {
      prepared = this.prepareOperation(parsed, operationName);
      parsed.operations.set(key, prepared);
    }
    if (Array.isArray(prepared)) throw new DocumentRefused(prepared);
    return prepared;
  }

  private parsed(query: string): ParsedDocument | DocumentProblem[] {
    let entry = this.documents.get(query);
    if (entry) return entry;
    try {
      const document = parse(query, { maxTokens: this.limits.tokens, noLocation: false });
      entry = { document, queryHash: createHash('sha256').update(query).digest('hex'), operations: new Map() };
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      entry = TOKEN_LIMIT_MESSAGE.test(error.message)
        ? [{ code: 'GRAPHQL_TOKEN_LIMIT_EXCEEDED', message: `The document has more than ${this.limits.tokens} tokens` }]
        : [{ code: 'GRAPHQL_PARSE_FAILED', message: error.message, ...locationsOf(error) }];
    }
    while (this.documents.size > 0 && (this.documents.size >= this.maxEntries || this.cachedChars + query.length > this.maxChars)) {
      const oldest = this.documents.keys().next();
      if (oldest.done) break;
      this.documents.delete(oldest.value);
      this.cachedChars -= oldest.value.length;
    }
    this.documents.set(query, entry);
    this.cachedChars += query.length;
    return entry;
  }

  private prepareOperation(parsed: ParsedDocument, operationName: string | undefined): PreparedOperation | DocumentProblem[] {
    const operation = getOperationAST(parsed.document, operationName);
    if (!operation) {
      const message = operationName
        ? `Unknown operation named "${operationName}"`
        : 'The document holds several operations or none: operationName must name one';
      return [{ code: 'GRAPHQL_UNKNOWN_OPERATION', message }];
    }
    const shape = measureOperation(this.schema, parsed.document, operation);
    const exceeded = this.exceededLimits(shape);
    if (exceeded.length > 0) return exceeded;
    parsed.validated ??= validate(this.schema, parsed.document, specifiedRules, { maxErrors: 50 }).map((error) => ({
      code: 'GRAPHQL_VALIDATION_FAILED' as const,
      message: error.message,
      ...locationsOf(error),
    }));
    if (parsed.validated.length > 0) return [...parsed.validated];
    return { document: parsed.document, operation, operationName: operation.name?.value ?? null, queryHash: parsed.queryHash, shape };
  }

  private exceededLimits(shape: OperationShape): DocumentProblem[] {
    const { limits } = this;
    const problems: DocumentProblem[] = [];
    if (shape.depth > limits.depth) {
      problems.push({ code: 'GRAPHQL_DEPTH_LIMIT_EXCEEDED', message: `The operation is ${shape.depth} fields deep; the limit is ${limits.depth}` });
    }
    if (shape.height > limits.height) {
      problems.push({ code: 'GRAPHQL_HEIGHT_LIMIT_EXCEEDED', message: `The operation selects ${shape.height} distinct fields; the limit is ${limits.height}` });
    }
    if (shape.aliases > limits.aliases) {
      problems.push({ code: 'GRAPHQL_ALIAS_LIMIT_EXCEEDED', message: `The operation uses ${shape.aliases} aliases; the limit is ${limits.aliases}` });
    }
    if (shape.rootFields > limits.rootFields) {
      problems.push({
        code: 'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED',
        message: `The operation selects ${shape.rootFields} root fields; the limit is ${limits.rootFields}`,
      });
    }
    return problems;
  }
}
