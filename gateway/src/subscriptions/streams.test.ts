import { streamDeclarations } from '@aifactory/contracts';
import { streamCarrying } from './streams.js';

describe('streamCarrying', () => {
  it('finds the stream whose subjects cover a subject, with NATS wildcards', () => {
    const streamFor = streamCarrying(streamDeclarations());
    expect(streamFor('platform.iam.organization.updated')).toBe('PLATFORM_IAM');
    expect(streamFor('tokenfactory.usage.recorded')).toBe('TOKENFACTORY');
    expect(streamFor('nobody.publishes.this')).toBeUndefined();
  });

  it('keeps a prefixed stack apart from the unprefixed one', () => {
    const streamFor = streamCarrying(streamDeclarations({ subjectPrefix: 'abc' }));
    expect(streamFor('abc.platform.iam.organization.updated')).toBe('ABC_PLATFORM_IAM');
    expect(streamFor('platform.iam.organization.updated')).toBeUndefined();
  });
});
