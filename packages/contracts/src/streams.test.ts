import { EVENT_DEFINITIONS } from './events/index.js';
import { streamDeclarations } from './streams.js';
import { auditSubject, EVENT_PUBLISHERS, prefixSubject, SUBJECT_FAMILIES } from './subjects.js';

/** NATS subject matching: `*` is one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i += 1) {
    if (want[i] === '>') return have.length > i;
    if (i >= have.length || (want[i] !== '*' && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}

function streamsCovering(subject: string, subjectPrefix?: string): string[] {
  return streamDeclarations({ subjectPrefix })
    .filter((stream) => stream.subjects.some((pattern) => matches(pattern, subject)))
    .map((stream) => stream.name);
}

describe('stream declarations', () => {
  it('cover every registered event subject with exactly one stream', () => {
    const uncovered = EVENT_DEFINITIONS.filter((definition) => streamsCovering(definition.subject).length !== 1);
    expect(uncovered.map((definition) => definition.subject)).toEqual([]);
  });

  it("cover every family and every publisher's audit subjects with exactly one stream", () => {
    for (const family of Object.values(SUBJECT_FAMILIES)) expect(streamsCovering(`${family}.any.thing`)).toHaveLength(1);
    for (const publisher of EVENT_PUBLISHERS) expect(streamsCovering(auditSubject(publisher, 'action'))).toEqual(['PLATFORM_AUDIT']);
    expect(streamsCovering('tokenfactory.usage.recorded')).toEqual(['TOKENFACTORY']);
  });

  it('keep the same coverage under a test prefix, with prefixed stream names', () => {
    for (const definition of EVENT_DEFINITIONS) {
      const names = streamsCovering(prefixSubject(definition.subject, 'run42'), 'run42');
      expect(names).toHaveLength(1);
      expect(names[0]).toMatch(/^RUN42_/);
      // A prefixed subject never lands in the production streams, nor the other way round.
      expect(streamsCovering(prefixSubject(definition.subject, 'run42'))).toEqual([]);
    }
  });

  it('keep a 2 minute duplicate window on file storage with one replica', () => {
    for (const stream of streamDeclarations()) {
      expect(stream).toMatchObject({ duplicateWindowMs: 120_000, storage: 'file', replicas: 1, retention: 'limits' });
      expect(stream.maxAgeMs).toBeGreaterThan(stream.duplicateWindowMs);
    }
  });
});
