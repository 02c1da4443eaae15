import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { printSchema, type GraphQLSchema } from 'graphql';
import { AppError } from '@aifactory/errors';
import type { RequestContext, Routes } from '@aifactory/http';
import type { Principal } from '@aifactory/service-auth';
import { canIntrospect } from '../graphql/graphql-route.js';

const require = createRequire(import.meta.url);

/** Served from the installed packages: the explorer must work with no internet, so no CDN. */
const ASSETS = {
  'react.js': { pkg: 'react', file: 'umd/react.production.min.js', type: 'text/javascript' },
  'react-dom.js': { pkg: 'react-dom', file: 'umd/react-dom.production.min.js', type: 'text/javascript' },
  'graphiql.js': { pkg: 'graphiql', file: 'graphiql.min.js', type: 'text/javascript' },
  'graphiql.css': { pkg: 'graphiql', file: 'graphiql.min.css', type: 'text/css' },
} as const;

const BOOT_SCRIPT = `const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
ReactDOM.createRoot(document.getElementById('explorer')).render(React.createElement(GraphiQL, { fetcher }));
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>AI Factory GraphQL explorer</title>
<link rel="stylesheet" href="/explorer/graphiql.css">
<style>body { margin: 0; height: 100vh; } #explorer { height: 100vh; }</style>
</head>
<body>
<div id="explorer"></div>
<script src="/explorer/react.js"></script>
<script src="/explorer/react-dom.js"></script>
<script src="/explorer/graphiql.js"></script>
<script src="/explorer/boot.js"></script>
</body>
</html>
`;

// GraphiQL sets inline styles; everything else comes from this origin only.
const CONTENT_SECURITY_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

/**
 * The explorer page, its assets and `GET /schema.graphql`, for the roles that
 * may introspect (internal developers, platform admins) and nobody else.
 */
export async function explorerRoutes(schema: GraphQLSchema, authenticate: (ctx: RequestContext) => Promise<Principal>): Promise<Routes> {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [name, asset] of Object.entries(ASSETS)) {
    // The UMD builds are not in the packages' `exports`; their package.json is, and the files sit beside it.
    const file = path.join(path.dirname(require.resolve(`${asset.pkg}/package.json`)), asset.file);
    files.set(name, { body: await readFile(file), type: asset.type });
  }
  files.set('boot.js', { body: Buffer.from(BOOT_SCRIPT), type: 'text/javascript' });
  const sdl = Buffer.from(printSchema(schema));

  const introspector = async (ctx: RequestContext) => {
    const principal = await authenticate(ctx);
    if (!canIntrospect(principal)) throw new AppError('GRAPHQL_INTROSPECTION_FORBIDDEN', 'The schema is for internal developers and platform admins');
  };
  const send = (ctx: RequestContext, body: Buffer, type: string) => {
    ctx.res.writeHead(200, {
      'content-type': `${type}; charset=utf-8`,
      'content-length': String(body.length),
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=300',
    });
    ctx.res.end(body);
  };

  const routes: Routes = {
    'GET /explorer': async (ctx) => {
      await introspector(ctx);
      send(ctx, Buffer.from(PAGE), 'text/html');
    },
    'GET /schema.graphql': async (ctx) => {
      await introspector(ctx);
      send(ctx, sdl, 'text/plain');
    },
  };
  for (const [name, file] of files) {
    routes[`GET /explorer/${name}`] = async (ctx) => {
      await introspector(ctx);
      send(ctx, file.body, file.type);
    };
  }
  return routes;
}
