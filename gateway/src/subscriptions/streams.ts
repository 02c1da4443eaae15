import type { StreamDeclaration } from '@aifactory/contracts';

/** NATS subject matching: `*` is one token, `>` the rest. */
function subjectMatches(pattern: string, subject: string): boolean {
  const wanted = pattern.split('.');
  const tokens = subject.split('.');
  for (let index = 0; index < wanted.length; index += 1) {
    const token = wanted[index];
    if (token === '>') return tokens.length > index;
    if (index >= tokens.length || (token !== '*' && token !== tokens[index])) return false;
  }
  return wanted.length === tokens.length;
}

/** The stream that stores a subject, from the contracts' declarations. */
export function streamCarrying(declarations: readonly StreamDeclaration[]): (subject: string) => string | undefined {
  return (subject) => declarations.find((stream) => stream.subjects.some((pattern) => subjectMatches(pattern, subject)))?.name;
}
