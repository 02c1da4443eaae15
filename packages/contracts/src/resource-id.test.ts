import { formatResourceId, isResourceId, parseResourceId, ResourceIdError, type ResourceIdParts } from './resource-id.js';

const ORG = '3f0c6a52-6c1e-4b7a-9d4e-2a9d8c1b7e01';
const PROJECT = '8b2d1f40-1a2b-4c3d-8e9f-0a1b2c3d4e5f';

describe('canonical resource id', () => {
  const cases: ResourceIdParts[] = [
    { region: 'uae-north', tenantId: ORG, projectId: PROJECT, resourceType: 'gpu_allocation', resourceId: 'alloc-42' },
    { region: 'global', tenantId: ORG, projectId: null, resourceType: 'organization', resourceId: ORG },
    { region: 'global', tenantId: ORG, projectId: null, resourceType: 'membership', resourceId: 'a.b_C-9' },
  ];

  it.each(cases)('round-trips %o', (parts) => {
    const text = formatResourceId(parts);
    expect(text.startsWith('core42:aicloud:')).toBe(true);
    expect(parseResourceId(text)).toEqual(parts);
    expect(formatResourceId(parseResourceId(text))).toBe(text);
  });

  it('writes a project-less resource with `-` as its project', () => {
    expect(formatResourceId(cases[1]!)).toBe(`core42:aicloud:global:${ORG}:-:organization:${ORG}`);
  });

  const malformed: Array<[string, string]> = [
    ['', 'shape'],
    [`core42:aicloud:global:${ORG}:-:organization`, 'shape'],
    [`core42:aicloud:global:${ORG}:-:organization:x:y`, 'shape'],
    [`aws:aicloud:global:${ORG}:-:organization:x`, 'partition'],
    [`core42:gcp:global:${ORG}:-:organization:x`, 'service'],
    [`core42:aicloud:UAE:${ORG}:-:organization:x`, 'region'],
    [`core42:aicloud:global:not-a-uuid:-:organization:x`, 'tenant_id'],
    [`core42:aicloud:global:${ORG}:proj:organization:x`, 'project_id'],
    [`core42:aicloud:global:${ORG}:-:Organization:x`, 'resource_type'],
    [`core42:aicloud:global:${ORG}:-:organization:has space`, 'resource_id'],
    [`core42:aicloud:global:${ORG}:-:organization:${'x'.repeat(600)}`, 'length'],
  ];

  it.each(malformed)('refuses %s (%s)', (text, reason) => {
    expect(isResourceId(text)).toBe(false);
    expect(() => parseResourceId(text)).toThrow(ResourceIdError);
    try {
      parseResourceId(text);
    } catch (error) {
      expect((error as ResourceIdError).reason).toBe(reason);
    }
  });

  it('refuses to format parts that would not parse', () => {
    expect(() => formatResourceId({ ...cases[0]!, resourceType: 'GPU' })).toThrow(ResourceIdError);
  });
});
