import { Kind, parse, visit, type ValueNode } from 'graphql';
import { SCOPES_DIRECTIVE_NAME } from './scopes-directive.js';

/**
 * Every scope named by any `@scopes` in a composed supergraph, sorted and
 * distinct. The supergraph keeps the directive (it is exported with
 * @composeDirective), so the whole graph's requirements can be read from it.
 */
export function supergraphScopes(supergraphSdl: string): string[] {
  const scopes = new Set<string>();
  visit(parse(supergraphSdl, { noLocation: true }), {
    Directive(node) {
      if (node.name.value !== SCOPES_DIRECTIVE_NAME) return;
      for (const argument of node.arguments ?? []) collectStrings(argument.value, scopes);
    },
  });
  return [...scopes].sort();
}

/**
 * The scopes the supergraph uses that the registry does not know: the CI
 * check that no subgraph ships a requirement nobody can be granted.
 */
export function unregisteredScopes(supergraphSdl: string, isRegistered: (scope: string) => boolean): string[] {
  return supergraphScopes(supergraphSdl).filter((scope) => !isRegistered(scope));
}

function collectStrings(value: ValueNode, into: Set<string>): void {
  if (value.kind === Kind.STRING) into.add(value.value);
  else if (value.kind === Kind.LIST) for (const item of value.values) collectStrings(item, into);
}
