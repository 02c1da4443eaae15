import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@aifactory/devstack';

// ARCHITECTURE.md, Layout (seed 003): packages never import a subgraph, a
// subgraph never imports another subgraph, the gateway imports none.
const SUBGRAPHS = readdirSync(path.join(REPO_ROOT, 'subgraphs'));
const IMPORT = /(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (entry === 'generated' || entry === 'node_modules' || entry === 'dist') return [];
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => match[1]!);
}

function subgraphImported(file: string, specifier: string): string | undefined {
  const packageMatch = /^@aifactory\/([^/]+)/.exec(specifier)?.[1];
  if (packageMatch && SUBGRAPHS.includes(packageMatch)) return packageMatch;
  if (specifier.startsWith('.')) {
    const target = path.relative(REPO_ROOT, path.resolve(path.dirname(file), specifier)).split(path.sep);
    if (target[0] === 'subgraphs') return target[1];
  }
  return undefined;
}

function violations(owner: string | undefined, files: string[]): string[] {
  return files.flatMap((file) =>
    importsOf(file)
      .map((specifier) => ({ specifier, subgraph: subgraphImported(file, specifier) }))
      .filter(({ subgraph }) => subgraph !== undefined && subgraph !== owner)
      .map(({ specifier }) => `${path.relative(REPO_ROOT, file)} imports ${specifier}`),
  );
}

describe('import rules', () => {
  it('keeps packages/ and prisma/ free of subgraph imports', () => {
    const dirs = [...readdirSync(path.join(REPO_ROOT, 'packages')).map((name) => path.join(REPO_ROOT, 'packages', name, 'src')), path.join(REPO_ROOT, 'prisma', 'src')];
    expect(violations(undefined, dirs.flatMap(sourceFiles))).toEqual([]);
  });

  it('keeps the gateway free of subgraph imports', () => {
    expect(violations(undefined, sourceFiles(path.join(REPO_ROOT, 'gateway', 'src')))).toEqual([]);
  });

  it('lets no subgraph import another', () => {
    for (const subgraph of SUBGRAPHS) {
      expect(violations(subgraph, sourceFiles(path.join(REPO_ROOT, 'subgraphs', subgraph)))).toEqual([]);
    }
  });

  it('finds a cross-subgraph import when there is one', () => {
    const file = path.join(REPO_ROOT, 'subgraphs', 'billing', 'src', 'x.ts');
    expect(subgraphImported(file, '../../iam/src/domain/hierarchy.js')).toBe('iam');
    expect(subgraphImported(file, '@aifactory/iam/server')).toBe('iam');
    expect(subgraphImported(file, './domain/accounts.js')).toBe('billing');
  });
});
