import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The secret-purpose registry (issue 15, Secrets custody; seed 001 phase 6):
 * every secret the platform holds, what it is for, its custody tier, where it
 * lives, who owns and uses it and how it rotates. The data is
 * registry/secret-purposes.json; a test fails when a service's config names
 * a secret the registry does not list.
 */

/**
 * Where a secret may live: a file named in config, or the environment (a
 * variable holding the value, delivered by the deployment). A URL only for
 * public material. Never a database row or a read model: there is no such kind.
 */
export const SECRET_LOCATION_KINDS = ['file', 'env', 'url'] as const;

const purposeSchema = z
  .object({
    /** `<name>`, or `<name>:<service>` expanded once per entry of `instances`. */
    purpose: z.string().regex(/^[a-z][a-z0-9-]*(:<service>)?$/),
    instances: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/)).optional(),
    status: z.enum(['active', 'planned', 'dev-only']),
    secret: z.boolean(),
    description: z.string().min(1),
    custodyTier: z.string().min(1),
    location: z.object({
      kind: z.enum(SECRET_LOCATION_KINDS),
      /** The config variables that hold the secret or name its file; empty only for dev-only material. */
      variables: z.array(z.string().regex(/^[A-Z][A-Z0-9_]*$/)),
      /** Where the dev stack keeps it. */
      dev: z.string().optional(),
    }),
    owner: z.string().min(1),
    consumers: z.array(z.string().min(1)).min(1),
    rotation: z.object({ cadence: z.string().min(1), method: z.string().min(1), automated: z.boolean() }),
  })
  .refine((entry) => entry.purpose.endsWith(':<service>') === (entry.instances !== undefined), {
    message: 'a `<name>:<service>` purpose lists its instances, and only it',
  })
  .refine((entry) => !entry.secret || entry.location.kind !== 'url', { message: 'a secret is never fetched from a URL' })
  .refine((entry) => entry.status === 'dev-only' || entry.location.variables.length > 0, { message: 'names the config variables it lives in' });

const registrySchema = z
  .object({
    tiers: z.record(z.string(), z.string().min(1)),
    purposes: z.array(purposeSchema).min(1),
    notSecrets: z.array(z.object({ variable: z.string().regex(/^[A-Z][A-Z0-9_]*$/), reason: z.string().min(1) })),
  })
  .refine((registry) => registry.purposes.every((entry) => registry.tiers[entry.custodyTier] !== undefined), {
    message: 'every purpose names a declared custody tier',
  });

export type SecretPurposeEntry = z.infer<typeof purposeSchema>;
export type SecretPurposeRegistry = z.infer<typeof registrySchema>;

/** One purpose as operators name it (`service-credential:billing`), with its entry. */
export interface SecretPurpose extends Omit<SecretPurposeEntry, 'purpose' | 'instances'> {
  purpose: string;
}

export const SECRET_PURPOSES_FILE = new URL('../registry/secret-purposes.json', import.meta.url);

export function parseSecretPurposes(text: string): SecretPurposeRegistry {
  const parsed = registrySchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`secret-purposes.json: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const names = expand(parsed.data).map((entry) => entry.purpose);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) throw new Error(`secret-purposes.json: ${duplicate} is listed twice`);
  return parsed.data;
}

export function loadSecretPurposes(): SecretPurposeRegistry {
  return parseSecretPurposes(readFileSync(SECRET_PURPOSES_FILE, 'utf8'));
}

/** Every purpose by its operator-facing name, `<name>:<service>` entries once per service. */
export function expand(registry: SecretPurposeRegistry): SecretPurpose[] {
  return registry.purposes.flatMap(({ instances, purpose, ...rest }) =>
    instances === undefined ? [{ ...rest, purpose }] : instances.map((service) => ({ ...rest, purpose: purpose.replace('<service>', service) })),
  );
}

/**
 * Names of config variables that hold or name a secret, by convention: a
 * file (`*_FILE`, `*_FILES`), a password, a secret, a key or a token.
 */
export const SECRET_VARIABLE_PATTERNS: readonly RegExp[] = [/_FILES?$/, /PASSWORD/, /SECRET/, /_KEY$/, /_TOKEN$/];

export function looksSecret(variable: string): boolean {
  return SECRET_VARIABLE_PATTERNS.some((pattern) => pattern.test(variable));
}

/** The variables of a config schema's source: the keys of its `z.object({...})` / `.extend({...})`. */
export function configVariablesOf(source: string): string[] {
  return [...new Set([...source.matchAll(/^\s+([A-Z][A-Z0-9_]*)\s*:/gm)].map((match) => match[1]!))];
}

/** The secret-looking variables the registry neither lists under a purpose nor exempts. */
export function unregisteredSecretVariables(registry: SecretPurposeRegistry, variables: Iterable<string>): string[] {
  const known = new Set([...registry.purposes.flatMap((entry) => entry.location.variables), ...registry.notSecrets.map((entry) => entry.variable)]);
  return [...new Set(variables)].filter((variable) => looksSecret(variable) && !known.has(variable)).sort();
}
