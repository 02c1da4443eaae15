import { AppError, toPublicError } from './index.js';

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
