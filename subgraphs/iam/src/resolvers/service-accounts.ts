import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { ApiKeyWithProject } from '../data/api-keys.js';
import type { Project } from '../data/hierarchy.js';
import type { ServiceAccount } from '../data/service-accounts.js';
import type { ServiceIdentityWithKeys } from '../data/service-identities.js';
import { connectionOf, keysetPage } from '../data/registries-pages.js';
import type { CreateApiKeyInput, RotateApiKeyInput } from '../domain/api-keys.js';
import { apiKeyStatusAt } from '../domain/credential-entries.js';
import { labelsOf } from '../domain/labels.js';
import { pageRequest } from '../domain/pagination.js';
import type { IamContext, PageArgs } from './context.js';

type Labels = Array<{ key: string; value: string }>;

/** Service accounts, API keys and service identities (schema/service-accounts.graphql): each reads its arguments and calls a service. */
export const serviceAccountResolvers: GraphQLResolverMap<IamContext> = {
  ApiKeyStatus: { ACTIVE: 'active', ROTATING: 'rotating', ROTATED_OUT: 'rotated_out', REVOKED: 'revoked', EXPIRED: 'expired', SUSPENDED: 'suspended' },
  ServiceIdentityStatus: { ACTIVE: 'active', DISABLED: 'disabled' },
  Query: {
    serviceAccount: (_root, args: { id: string }, ctx: IamContext) => ctx.serviceAccounts.serviceAccount(ctx, args.id),
    apiKey: (_root, args: { id: string }, ctx: IamContext) => ctx.apiKeys.apiKey(ctx, args.id),
    serviceIdentities: async (_root, args: PageArgs, ctx: IamContext) =>
      connectionOf(await ctx.serviceIdentities.list(ctx, keysetPage(args)), (identity: ServiceIdentityWithKeys) => identity.name),
  },
  Mutation: {
    createServiceAccount: (_root, args: { input: { projectId: string; name: string; description?: string | null; labels?: Labels | null } }, ctx: IamContext) =>
      ctx.serviceAccounts.createServiceAccount(ctx, args.input),
    createApiKey: (_root, args: { input: CreateApiKeyInput }, ctx: IamContext) => ctx.apiKeys.createApiKey(ctx, args.input),
    rotateApiKey: (_root, args: { input: RotateApiKeyInput }, ctx: IamContext) => ctx.apiKeys.rotateApiKey(ctx, args.input),
    revokeApiKey: (_root, args: { id: string; reason?: string | null }, ctx: IamContext) => ctx.apiKeys.revokeApiKey(ctx, args),
    disableServiceIdentity: (_root, args: { name: string; reason: string }, ctx: IamContext) => ctx.serviceIdentities.disable(ctx, args.name, args.reason),
    enableServiceIdentity: (_root, args: { name: string }, ctx: IamContext) => ctx.serviceIdentities.enable(ctx, args.name),
  },
  Project: {
    serviceAccounts: (project: Project, args: PageArgs, ctx: IamContext) => ctx.serviceAccounts.serviceAccountsOf(ctx, project, pageRequest(args)),
    apiKeys: (project: Project, args: PageArgs, ctx: IamContext) => ctx.apiKeys.apiKeysOfProject(ctx, project, pageRequest(args)),
  },
  ServiceAccount: {
    labels: (account: ServiceAccount) => labelsOf(account.labels),
    // An account's project always exists (foreign key); the non-null schema type relies on it.
    project: (account: ServiceAccount, _args, ctx: IamContext) => ctx.hierarchy.parentProject(account.projectId),
    createdBy: (account: ServiceAccount, _args, ctx: IamContext) => (account.createdBy === null ? null : ctx.users.user(account.createdBy)),
    apiKeys: (account: ServiceAccount, args: PageArgs, ctx: IamContext) => ctx.apiKeys.apiKeysOf(ctx, account, pageRequest(args)),
  },
  ApiKey: {
    labels: (key: ApiKeyWithProject) => labelsOf(key.labels),
    status: (key: ApiKeyWithProject) => apiKeyStatusAt(key, new Date()),
    serviceAccount: (key: ApiKeyWithProject, _args, ctx: IamContext) => ctx.serviceAccounts.parent(key.serviceAccountId),
    createdBy: (key: ApiKeyWithProject, _args, ctx: IamContext) => (key.createdBy === null ? null : ctx.users.user(key.createdBy)),
    creatorLeftOrganization: (key: ApiKeyWithProject) => key.creatorLeftAt !== null,
  },
};
