import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SUPERGRAPH_CONFIG = path.join(REPO_ROOT, 'supergraph.yaml');
export const SUPERGRAPH_FILE = path.join(REPO_ROOT, 'supergraph.graphql');
/** Git-ignored: dev keys, run files. */
export const DEV_DIR = path.join(REPO_ROOT, '.dev');
