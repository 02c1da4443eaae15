import { JetStreamApiError } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { classifyPublishError } from './publish-failure.js';

describe('classifyPublishError', () => {
  it('counts an error answer from JetStream as a rejection', () => {
    const error = new JetStreamApiError({ code: 400, err_code: 10054, description: 'message size exceeds maximum allowed' });
    expect(classifyPublishError(error)).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('10054') });
  });

  it('reads "no responders" as no stream for the subject, for the relay to confirm', () => {
    const error = new RequestError('no responders', { cause: new NoRespondersError('nowhere.x') });
    expect(classifyPublishError(new Error('jetstream is not enabled', { cause: error }))).toEqual({
      kind: 'no_stream',
      reason: 'no responders on nowhere.x',
    });
  });

  it('counts a permission violation as a rejection', () => {
    const violation = new PermissionViolationError('Permissions Violation for Publish to "x.y"', 'publish', 'x.y');
    expect(classifyPublishError(new RequestError(violation.message, { cause: violation }))).toMatchObject({ kind: 'rejected' });
  });

  it('calls a timeout, a closed connection or a known disconnect an outage', () => {
    expect(classifyPublishError(new TimeoutError())).toMatchObject({ kind: 'outage' });
    expect(classifyPublishError(new ClosedConnectionError())).toMatchObject({ kind: 'outage' });
    expect(classifyPublishError(new RequestError('connection disconnected'))).toMatchObject({ kind: 'outage' });
  });
});
