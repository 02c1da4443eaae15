import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
import { keyIdOf } from '@aifactory/service-auth';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { HierarchyStore, IamTransaction } from '../data/hierarchy.js';
import type { KeysetPage, Page } from '../data/registries-pages.js';
import { pageOf } from '../data/registries-pages.js';
import type { ServiceIdentityStore, ServiceIdentityWithKeys } from '../data/service-identities.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { originOf, type Caller } from './caller.js';
import { serviceIdentityUpdated } from './credential-events.js';
import type { CredentialPublication } from './credential-publication.js';

export const SERVICE_IDENTITY_MANAGE = 'platform:service_identity:manage';

const nameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'is not a service name');
const reasonSchema = z.string().trim().min(1).max(500);

/**
 * Who changes a service identity: a request (checked for
 * `platform:service_identity:manage`), or the system itself, a seed or an
 * operator's CLI running with iam's database credentials, which no request
 * can reach.
 */
export type ServiceIdentityActor = Caller | AuditCaller;

type Change = 'disabled' | 'enabled' | 'key_registered' | 'key_retired';
const ACTIONS: Record<Change, string> = {
  disabled: 'iam.service_identity.disable',
  enabled: 'iam.service_identity.enable',
  key_registered: 'iam.service_identity.key_register',
  key_retired: 'iam.service_identity.key_retire',
};

/**
 * The platform's service identities (issue 15, Service identity): which
 * scopes each may claim in its own tokens and which services it may call
 * (from packages/contracts/registry/service-identities.json), and the
 * Ed25519 public keys its tokens are verified with, each named by its RFC
 * 7638 thumbprint. Disabling one refuses its tokens everywhere as soon as
 * its read-model entry arrives, which this service pushes right after the
 * commit. Every change is audited.
 */
export class ServiceIdentityService {
  constructor(
    private readonly store: ServiceIdentityStore,
    private readonly hierarchy: HierarchyStore,
    private readonly outbox: Outbox,
    private readonly publication: CredentialPublication,
  ) {}

  list(caller: Caller, page: KeysetPage): Promise<Page<ServiceIdentityWithKeys>> {
    caller.access.requireHolds(SERVICE_IDENTITY_MANAGE);
    return this.store.list(page).then((rows) => pageOf(rows, page));
  }

  /** Emergency stop; disabling a disabled identity changes nothing. */
  disable(who: ServiceIdentityActor, name: string, reason: string): Promise<ServiceIdentityWithKeys> {
    const valid = parseInput(z.object({ name: nameSchema, reason: reasonSchema }), { name, reason });
    return this.change(who, valid.name, 'disabled', { reason: valid.reason }, async (tx, identity) =>
      identity.status === 'disabled' ? null : this.store.setStatus(tx, identity.name, { status: 'disabled', reason: valid.reason }),
    );
  }

  enable(who: ServiceIdentityActor, name: string): Promise<ServiceIdentityWithKeys> {
    const valid = parseInput(nameSchema, name);
    return this.change(who, valid, 'enabled', {}, async (tx, identity) =>
      identity.status === 'active' ? null : this.store.setStatus(tx, identity.name, { status: 'active', reason: null }),
    );
  }

  /**
   * Registers an Ed25519 public key (SPKI PEM) under its thumbprint, which
   * the service's tokens name as `kid`. Registering a key the identity
   * already holds changes nothing; a key held by another identity, or one
   * retired before, is refused: a key id never changes owner or comes back.
   */
  async registerKey(who: ServiceIdentityActor, name: string, publicKeyPem: string): Promise<{ identity: ServiceIdentityWithKeys; kid: string }> {
    const valid = parseInput(z.object({ name: nameSchema, publicKeyPem: z.string().min(1).max(10_000) }), { name, publicKeyPem });
    const publicKey = ed25519PublicKey(valid.publicKeyPem);
    const kid = await keyIdOf(publicKey);
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const identity = await this.change(who, valid.name, 'key_registered', { kid }, async (tx, current) => {
      const existing = await this.store.findKey(tx, kid);
      if (existing === null) return this.store.addKey(tx, current.name, { kid, publicKeyPem: pem });
      if (existing.serviceName !== current.name || existing.retiredAt !== null) {
        throw new AppError('IAM_DUPLICATE', 'This key is registered to another service identity, or was retired', { details: { kid } });
      }
      return null;
    });
    return { identity, kid };
  }

  /** Its tokens signed with this key are refused from then on; retiring a retired key changes nothing. */
  retireKey(who: ServiceIdentityActor, name: string, kid: string): Promise<ServiceIdentityWithKeys> {
    const valid = parseInput(z.object({ name: nameSchema, kid: z.string().min(1).max(200) }), { name, kid });
    return this.change(who, valid.name, 'key_retired', { kid: valid.kid }, async (tx, current) => {
      const key = current.keys.find((candidate) => candidate.kid === valid.kid);
      if (key === undefined) throw new AppError('NOT_FOUND', `The service identity ${current.name} has no key ${valid.kid}`);
      return key.retiredAt === null ? this.store.retireKey(tx, current.name, key.kid) : null;
    });
  }

  /**
   * One change under the identity's lock, with its event and audit record;
   * `apply` returns null when there is nothing to change (no event then).
   * The new entry is pushed to the read model once committed.
   */
  private async change(
    who: ServiceIdentityActor,
    name: string,
    change: Change,
    details: Record<string, unknown>,
    apply: (tx: IamTransaction, identity: ServiceIdentityWithKeys) => Promise<ServiceIdentityWithKeys | null>,
  ): Promise<ServiceIdentityWithKeys> {
    const origin = this.authorize(who);
    const result = await this.hierarchy.transaction(async (tx) => {
      const identity = await this.store.lock(tx, name);
      if (!identity) throw new AppError('NOT_FOUND', `No service identity ${name}`);
      const changed = await apply(tx, identity);
      if (changed === null) return { identity, changed: false };
      await this.outbox.add(tx, serviceIdentityUpdated(changed, change, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: ACTIONS[change],
          outcome: 'succeeded',
          caller: origin,
          scope: 'access' in who ? SERVICE_IDENTITY_MANAGE : null,
          // A service identity belongs to the platform, not to an organization: the record names it in its details.
          resource: null,
          details: { name, ...details },
        }),
      );
      return { identity: changed, changed: true };
    });
    if (result.changed) await this.publication.serviceIdentity(name);
    return result.identity;
  }

  private authorize(who: ServiceIdentityActor): AuditCaller {
    if (!('access' in who)) return who;
    who.access.requireHolds(SERVICE_IDENTITY_MANAGE);
    return originOf(who);
  }
}

function ed25519PublicKey(pem: string): KeyObject {
  // node would derive the public half of a private key; a private key is refused rather than ever touched here.
  if (/PRIVATE KEY/.test(pem)) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'publicKeyPem must be a public key, never a private one');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'publicKeyPem is not a PEM public key', { cause: error });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `publicKeyPem holds a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; service tokens need Ed25519`);
  }
  return key;
}
