import {
  Kind,
  getNamedType,
  isInterfaceType,
  isObjectType,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** What the operation limits measure, counted through every fragment. */
export interface OperationShape {
  /** Deepest chain of nested fields; a root field is depth 1. */
  depth: number;
  /** Distinct fields (type and field name), as Apollo Router's "height" counts them. */
  height: number;
  /** Aliased fields, once per place a fragment is spread. */
  aliases: number;
  /** Fields selected on the root type. */
  rootFields: number;
  /** `__schema` or `__type` anywhere, fragments included. */
  introspection: boolean;
}

interface Summary {
  depth: number;
  aliases: number;
  fields: Set<string>;
  direct: number;
  introspection: boolean;
}

const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

/**
 * Measures one operation. Each fragment is summarised once and reused wherever
 * it is spread, so a document that spreads fragments exponentially costs
 * linear time to measure while its counts still grow as its expansion does.
 * Cycles are skipped here; validation refuses them afterwards.
 */
export function measureOperation(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): OperationShape {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const memo = new Map<string, Summary>();

  const typeNamed = (name: string | undefined): GraphQLNamedType | undefined => (name ? schema.getType(name) : undefined);

  const summarise = (selectionSet: SelectionSetNode, parent: GraphQLNamedType | undefined, visiting: Set<string>): Summary => {
    const summary: Summary = { depth: 0, aliases: 0, fields: new Set(), direct: 0, introspection: false };
    const merge = (child: Summary, extraDepth: number) => {
      summary.depth = Math.max(summary.depth, child.depth + extraDepth);
      summary.aliases += child.aliases;
      summary.introspection ||= child.introspection;
      for (const field of child.fields) summary.fields.add(field);
    };
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        summary.fields.add(`${parent?.name ?? '?'}.${name}`);
        summary.direct += 1;
        if (selection.alias) summary.aliases += 1;
        if (INTROSPECTION_FIELDS.has(name)) summary.introspection = true;
        if (selection.selectionSet) {
          const definition = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
          merge(summarise(selection.selectionSet, definition ? getNamedType(definition.type) : undefined, visiting), 1);
        } else {
          summary.depth = Math.max(summary.depth, 1);
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const child = summarise(selection.selectionSet, selection.typeCondition ? typeNamed(selection.typeCondition.name.value) : parent, visiting);
        summary.direct += child.direct;
        merge(child, 0);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || visiting.has(name)) continue;
        let child = memo.get(name);
        if (!child) {
          child = summarise(fragment.selectionSet, typeNamed(fragment.typeCondition.name.value), new Set([...visiting, name]));
          memo.set(name, child);
        }
        summary.direct += child.direct;
        merge(child, 0);
      }
    }
    return summary;
  };

  const root = schema.getRootType(operation.operation) ?? undefined;
  const summary = summarise(operation.selectionSet, root, new Set());
  return {
    depth: summary.depth,
    height: summary.fields.size,
    aliases: summary.aliases,
    rootFields: summary.direct,
    introspection: summary.introspection,
  };
}
