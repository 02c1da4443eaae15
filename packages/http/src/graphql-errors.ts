import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { AppError, ERROR_CODES, isAppError, type ErrorCode } from '@aifactory/errors';
import { currentCorrelationId, type Logger } from '@aifactory/logging';

/** Apollo's own codes, renamed into the platform's registry. */
const APOLLO_CODES: Record<string, ErrorCode> = {
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  OPERATION_RESOLUTION_FAILURE: 'GRAPHQL_UNKNOWN_OPERATION',
  BAD_USER_INPUT: 'BAD_REQUEST_INVALID_INPUT',
  BAD_REQUEST: 'GRAPHQL_BAD_REQUEST',
};

function isKnownCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

function originalOf(error: unknown): unknown {
  let current = error;
  while (current && typeof current === 'object' && 'originalError' in current && current.originalError) {
    current = current.originalError;
  }
  return current;
}

/**
 * Every GraphQL error leaves the process with a registered code, a safe
 * message and the correlation id; anything unexpected is logged with its
 * cause and shown only as INTERNAL_ERROR.
 */
export function createGraphQLErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const correlationId = currentCorrelationId();
    const original = originalOf(error);
    const rawCode = formatted.extensions?.code;
    let code: ErrorCode;
    let message = formatted.message;
    if (isAppError(original)) {
      code = original.code;
      message = original.message;
    } else if (typeof rawCode === 'string' && APOLLO_CODES[rawCode]) {
      code = APOLLO_CODES[rawCode];
    } else if (isKnownCode(rawCode)) {
      code = rawCode;
    } else {
      logger.error({ err: original, code: rawCode }, 'unexpected GraphQL error');
      code = 'INTERNAL_ERROR';
      message = 'Internal error';
    }
    const result: GraphQLFormattedError = { message, extensions: { code, correlationId } };
    return formatted.locations || formatted.path
      ? { ...result, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) }
      : result;
  };
}

/**
 * Refuses a request whose `operationName` names no operation in the document
 * (or that needs a name and has none) before execution, with its own code:
 * the gateway's planner would otherwise fail it as an internal error.
 */
export const unknownOperationPlugin: ApolloServerPlugin<BaseContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation, request }) {
        if (operation) return;
        const message = request.operationName
          ? `Unknown operation named "${request.operationName}"`
          : 'The document holds several operations: operationName must name one';
        throw new GraphQLError(message, {
          originalError: new AppError('GRAPHQL_UNKNOWN_OPERATION', message),
          extensions: { code: 'GRAPHQL_UNKNOWN_OPERATION', http: { status: 400 } },
        });
      },
    };
  },
};
