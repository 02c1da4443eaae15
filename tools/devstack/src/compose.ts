import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const supergraphConfigSchema = z.object({
  federation_version: z.string().optional(),
  subgraphs: z.record(
    z.string(),
    z.object({ routing_url: z.url(), schema: z.object({ file: z.string().min(1) }) }),
  ),
});

export interface SubgraphSource {
  name: string;
  url: string;
  schemaFile: string;
  sdl: string;
}

/** Reads supergraph.yaml (Rover's format) and each subgraph's SDL file. */
export async function readSupergraphConfig(configFile: string): Promise<SubgraphSource[]> {
  const config = supergraphConfigSchema.parse(parseYaml(await readFile(configFile, 'utf8')));
  const root = path.dirname(configFile);
  return Promise.all(
    Object.entries(config.subgraphs).map(async ([name, entry]) => {
      const schemaFile = path.resolve(root, entry.schema.file);
      return { name, url: entry.routing_url, schemaFile, sdl: await readSdl(schemaFile) };
    }),
  );
}

/** A subgraph's SDL: one file, or every `.graphql` file of a folder in name order (how iam splits its schema). */
async function readSdl(schemaPath: string): Promise<string> {
  if (!(await stat(schemaPath)).isDirectory()) return readFile(schemaPath, 'utf8');
  const files = (await readdir(schemaPath)).filter((file) => file.endsWith('.graphql')).sort();
  const parts = await Promise.all(files.map((file) => readFile(path.join(schemaPath, file), 'utf8')));
  return parts.join('\n');
}

export type CompositionResult = { ok: true; supergraphSdl: string } | { ok: false; errors: string[] };

export function composeSupergraph(subgraphs: Array<Pick<SubgraphSource, 'name' | 'url' | 'sdl'>>): CompositionResult {
  let typeDefs;
  try {
    typeDefs = subgraphs.map((subgraph) => ({ name: subgraph.name, url: subgraph.url, typeDefs: parse(subgraph.sdl) }));
  } catch (error) {
    return { ok: false, errors: [(error as Error).message] };
  }
  const result = composeServices(typeDefs);
  if (result.errors) return { ok: false, errors: result.errors.map((error) => error.message) };
  return { ok: true, supergraphSdl: `${result.supergraphSdl.trimEnd()}\n` };
}
