/**
 * The canonical resource identifier of seed 004 (pre-phase resource naming):
 * `core42:aicloud:{region}:{tenant_id}:{project_id}:{resource_type}:{resource_id}`.
 * API, events and audit all format and parse it here, so no service drifts.
 * The tenant is the organization; a resource above project level (an
 * organization, a department, an organization-level membership) has `-` as
 * its project.
 */

export const RESOURCE_ID_PARTITION = 'core42';
export const RESOURCE_ID_SERVICE = 'aicloud';
/** Where a resource that belongs to no region (IAM's own) lives. */
export const GLOBAL_REGION = 'global';
export const NO_PROJECT = '-';

export interface ResourceIdParts {
  region: string;
  /** The organization's id. */
  tenantId: string;
  /** Null above project level (formatted as `-`). */
  projectId: string | null;
  resourceType: string;
  resourceId: string;
}

const REGION = /^[a-z0-9-]{1,32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RESOURCE_TYPE = /^[a-z][a-z0-9_]{0,62}$/;
const RESOURCE_LOCAL_ID = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_LENGTH = 512;

export class ResourceIdError extends Error {
  constructor(readonly reason: string) {
    super(`invalid resource id: ${reason}`);
    this.name = 'ResourceIdError';
  }
}

function check(parts: ResourceIdParts): void {
  if (!REGION.test(parts.region)) throw new ResourceIdError('region');
  if (!UUID.test(parts.tenantId)) throw new ResourceIdError('tenant_id');
  if (parts.projectId !== null && !UUID.test(parts.projectId)) throw new ResourceIdError('project_id');
  if (!RESOURCE_TYPE.test(parts.resourceType)) throw new ResourceIdError('resource_type');
  if (!RESOURCE_LOCAL_ID.test(parts.resourceId)) throw new ResourceIdError('resource_id');
}

export function formatResourceId(parts: ResourceIdParts): string {
  check(parts);
  return [
    RESOURCE_ID_PARTITION,
    RESOURCE_ID_SERVICE,
    parts.region,
    parts.tenantId,
    parts.projectId ?? NO_PROJECT,
    parts.resourceType,
    parts.resourceId,
  ].join(':');
}

/** Throws ResourceIdError naming the first part that is wrong. */
export function parseResourceId(text: string): ResourceIdParts {
  if (text.length > MAX_LENGTH) throw new ResourceIdError('length');
  const fields = text.split(':');
  if (fields.length !== 7) throw new ResourceIdError('shape');
  const [partition, service, region, tenantId, project, resourceType, resourceId] = fields as [
    string, string, string, string, string, string, string,
  ];
  if (partition !== RESOURCE_ID_PARTITION) throw new ResourceIdError('partition');
  if (service !== RESOURCE_ID_SERVICE) throw new ResourceIdError('service');
  const parts: ResourceIdParts = {
    region,
    tenantId,
    projectId: project === NO_PROJECT ? null : project,
    resourceType,
    resourceId,
  };
  check(parts);
  return parts;
}

export function isResourceId(text: string): boolean {
  try {
    parseResourceId(text);
    return true;
  } catch {
    return false;
  }
}
