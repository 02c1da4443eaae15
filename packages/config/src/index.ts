import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once against a schema whose keys are the variable
 * names, so every problem names the variable that caused it.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.join('.') : '(environment)';
    return `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/**
 * For a process entry point: parse or print every problem and exit 1.
 */
export function loadConfigOrExit<S extends z.ZodType>(
  schema: S,
  processName: string,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  try {
    return parseConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${processName}: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** Building blocks for environment variables, which are always strings. */
export const env = {
  port: (fallback?: number) =>
    fallback === undefined
      ? z.coerce.number().int().min(0).max(65535)
      : z.coerce.number().int().min(0).max(65535).default(fallback),
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  url: () => z.url(),
  nonEmpty: () => z.string().trim().min(1),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** A comma-separated list of non-empty values. */
  list: () =>
    z
      .string()
      .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
      .pipe(z.array(z.string()).min(1)),
  /** A JSON document validated against an inner schema. */
  json: <T extends z.ZodType>(inner: T) =>
    z.string().transform((value, ctx) => {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    }).pipe(inner),
  identifier: () => z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'must be a lowercase SQL identifier (a-z, 0-9, _)'),
};

export { z };
