import { AppError } from '@aifactory/errors';
import {
  defaultFieldResolver,
  getDirectiveValues,
  isObjectType,
  type ConstDirectiveNode,
  type GraphQLDirective,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLInterfaceType,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
} from 'graphql';
import type { Access } from './access.js';
import type { Catalog } from './catalog.js';

export const SCOPES_DIRECTIVE_NAME = 'scopes';

/** What every subgraph declares (plan-iam.md, @scopes in subgraphs) and exports with @composeDirective. */
export const SCOPES_DIRECTIVE_SDL = 'directive @scopes(anyOf: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE';

/** OR of ANDs: allowed when every scope of at least one inner list is held. */
export type ScopeRequirement = readonly (readonly string[])[];

type ResolveReference = (reference: unknown, context: unknown, info: GraphQLResolveInfo) => unknown;
interface SubgraphExtensions {
  apollo?: { subgraph?: { resolveReference?: ResolveReference } };
}

/**
 * Enforces `@scopes` on every field that carries it, or whose type (or one
 * of whose interfaces) carries it, by wrapping the field's resolver, so the
 * check runs however the field is reached: a root field, a nested one, or an
 * entity fetched through `_entities`. A type-level requirement also guards
 * the type's `__resolveReference`, so an entity is not even loaded for a
 * caller who may not see it. Several requirements on one field (its own and
 * its type's) must all pass. The schema is changed in place and returned.
 *
 * A field without a resolver gets graphql's default one wrapped; a server
 * configured with a custom default field resolver would need its own here.
 */
export function applyScopesDirective(schema: GraphQLSchema, accessOf: (context: unknown) => Access): GraphQLSchema {
  const directive = schema.getDirective(SCOPES_DIRECTIVE_NAME);
  if (!directive) return schema;
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const typeRequirements = [...typeScopes(directive, type), ...type.getInterfaces().flatMap((inherited) => typeScopes(directive, inherited))];
    for (const field of Object.values(type.getFields())) {
      const requirements = [...typeRequirements, ...fieldScopes(directive, type, field)];
      if (requirements.length > 0) guardField(field, requirements, accessOf);
    }
    if (typeRequirements.length > 0) guardReference(type, typeRequirements, accessOf);
  }
  return schema;
}

/**
 * Refuses unless the requirement is met. A retired scope satisfies nothing,
 * so a field listing an old and a new scope keeps working for holders of the
 * new one; when nothing is satisfied and a retired scope was in the way, the
 * refusal says so (AUTH_SCOPE_RETIRED). An unregistered scope is a defect and
 * throws AUTH_SCOPE_UNREGISTERED whatever the principal holds.
 */
export function enforceScopes(access: Access, requirement: ScopeRequirement): void {
  checkRegistered(access.catalog, requirement);
  let retired: string | undefined;
  for (const allOf of requirement) {
    let satisfied = true;
    for (const scope of allOf) {
      if (access.catalog.scope(scope)?.lifecycle === 'retired') {
        retired ??= scope;
        satisfied = false;
        break;
      }
      if (!access.holds(scope)) {
        satisfied = false;
        break;
      }
    }
    if (satisfied) return;
  }
  const first = requirement[0]?.[0] ?? null;
  access.recordDeny(first, null, null, retired === undefined ? 'directive' : 'scope_retired');
  if (retired !== undefined) throw new AppError('AUTH_SCOPE_RETIRED', `The scope ${retired} is retired`, { details: { scope: retired } });
  throw new AppError('AUTH_FORBIDDEN', `Missing permission ${describe(requirement)}`, { details: { anyOf: requirement } });
}

/** Registration is checked once per requirement and catalogue, not on every field of every item. */
const registeredIn = new WeakMap<Catalog, WeakSet<ScopeRequirement>>();

function checkRegistered(catalog: Catalog, requirement: ScopeRequirement): void {
  let checked = registeredIn.get(catalog);
  if (checked?.has(requirement)) return;
  for (const allOf of requirement) {
    for (const scope of allOf) {
      // usable() throws AUTH_SCOPE_UNREGISTERED; a retired scope is judged per request instead.
      if (!catalog.isRegistered(scope)) catalog.usable(scope);
    }
  }
  if (checked === undefined) {
    checked = new WeakSet();
    registeredIn.set(catalog, checked);
  }
  checked.add(requirement);
}

/** Scopes are public registry entries, so naming them is safe. */
function describe(requirement: ScopeRequirement): string {
  return requirement.length === 0 ? '(none can satisfy this field)' : requirement.map((allOf) => allOf.join(' and ')).join(', or ');
}

function guardField(field: GraphQLField<unknown, unknown>, requirements: ScopeRequirement[], accessOf: (context: unknown) => Access): void {
  const resolve: GraphQLFieldResolver<unknown, unknown> = field.resolve ?? defaultFieldResolver;
  field.resolve = (source, args, context, info) => {
    enforceAll(accessOf(context), requirements);
    return resolve(source, args, context, info);
  };
  const subscribe = field.subscribe;
  if (subscribe !== undefined) {
    field.subscribe = (source, args, context, info) => {
      enforceAll(accessOf(context), requirements);
      return subscribe(source, args, context, info);
    };
  }
}

function guardReference(type: GraphQLObjectType, requirements: ScopeRequirement[], accessOf: (context: unknown) => Access): void {
  const extensions = type.extensions as SubgraphExtensions;
  const resolveReference = extensions.apollo?.subgraph?.resolveReference;
  if (resolveReference === undefined) return;
  // The same move @apollo/subgraph makes to attach __resolveReference.
  type.extensions = {
    ...type.extensions,
    apollo: {
      ...extensions.apollo,
      subgraph: {
        ...extensions.apollo?.subgraph,
        resolveReference: (reference: unknown, context: unknown, info: GraphQLResolveInfo) => {
          try {
            enforceAll(accessOf(context), requirements);
          } catch (error) {
            // Rejected rather than thrown: _entities then nulls this one entity, not the whole batch.
            return Promise.reject(error);
          }
          return resolveReference(reference, context, info);
        },
      },
    },
  };
}

function enforceAll(access: Access, requirements: readonly ScopeRequirement[]): void {
  for (const requirement of requirements) enforceScopes(access, requirement);
}

function typeScopes(directive: GraphQLDirective, type: GraphQLObjectType | GraphQLInterfaceType): ScopeRequirement[] {
  return [type.astNode, ...type.extensionASTNodes].flatMap((node) => (node ? requirementOf(directive, node) : []));
}

function fieldScopes(directive: GraphQLDirective, type: GraphQLObjectType, field: GraphQLField<unknown, unknown>): ScopeRequirement[] {
  const own = field.astNode ? requirementOf(directive, field.astNode) : [];
  const inherited = type
    .getInterfaces()
    .map((parent) => parent.getFields()[field.name]?.astNode)
    .flatMap((node) => (node ? requirementOf(directive, node) : []));
  return [...own, ...inherited];
}

function requirementOf(directive: GraphQLDirective, node: { readonly directives?: readonly ConstDirectiveNode[] }): ScopeRequirement[] {
  const values = getDirectiveValues(directive, node);
  if (values === undefined) return [];
  return [Object.freeze((values.anyOf as string[][]).map((allOf) => Object.freeze([...allOf])))];
}
