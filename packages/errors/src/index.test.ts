import { readFile } from 'node:fs/promises';
import { AppError, ERROR_CODES, toPublicError } from './index.js';

describe('AppError', () => {
  it('shows a client its code and safe message, never its cause', () => {
    const error = new AppError('AUTH_FORBIDDEN', 'Not yours', { cause: new Error('row 42 belongs to org 7') });
    expect(toPublicError(error, 'corr-1')).toEqual({ code: 'AUTH_FORBIDDEN', message: 'Not yours', correlationId: 'corr-1' });
    expect(error.httpStatus).toBe(403);
    expect(error.errorClass).toBe('authz');
  });

  it('hides anything that is not an AppError behind INTERNAL_ERROR', () => {
    expect(toPublicError(new Error('connection string postgresql://secret'), 'corr-2')).toEqual({
      code: 'INTERNAL_ERROR',
      message: 'Internal error',
      correlationId: 'corr-2',
    });
  });
});

describe('the code registry', () => {
  const codes = Object.keys(ERROR_CODES);

  it('names every code <DOMAIN>_<REASON> in capitals', () => {
    for (const code of codes) expect(code).toMatch(/^[A-Z]+(?:_[A-Z0-9]+)+$/);
  });

  it('gives every code a cause class of seed 001 and an HTTP status', () => {
    const classes = ['validation', 'authn', 'authz', 'database', 'upstream', 'local_defect', 'provider_runtime', 'retryable_infra'];
    for (const spec of Object.values(ERROR_CODES)) {
      expect(classes).toContain(spec.class);
      expect(spec.http).toBeGreaterThanOrEqual(400);
    }
  });

  it('documents every code in the README, where clients look them up', async () => {
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    const missing = codes.filter((code) => !readme.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
