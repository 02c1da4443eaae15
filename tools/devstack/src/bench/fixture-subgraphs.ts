import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { execute, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';
import { composeSupergraph } from '../compose.js';

/**
 * Two federation subgraphs that exist only for the gateway comparison: no
 * part of the platform, no auth (any caller, any Authorization header), fixed
 * data, and as little work per call as a GraphQL server can do, so that what
 * the benchmark measures is the gateway in front of them.
 */
export const FIXTURE_SUBGRAPHS = ['catalog', 'inventory'] as const;
export type FixtureSubgraphName = (typeof FIXTURE_SUBGRAPHS)[number];

export function isFixtureSubgraphName(name: string): name is FixtureSubgraphName {
  return (FIXTURE_SUBGRAPHS as readonly string[]).includes(name);
}

const PRODUCT_COUNT = 200;

const CATALOG_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  "A product for sale; its stock is inventory's."
  type Product @key(fields: "id") {
    id: ID!
    sku: String!
    name: String!
    description: String!
    priceCents: Int!
    currency: String!
    category: String!
    tags: [String!]!
    rating: Float!
    imageUrl: String!
    createdAt: String!
  }

  type Query {
    "The first products in catalog order."
    products(first: Int!): [Product!]!
    product(id: ID!): Product
  }
`;

const INVENTORY_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Product @key(fields: "id") {
    id: ID!
    stock: Int!
    restockEta: String
    warehouses: [Warehouse!]!
  }

  "Where some of a product's stock is kept."
  type Warehouse {
    code: String!
    city: String!
    quantity: Int!
  }
`;

const CATEGORIES = ['accelerators', 'networking', 'storage', 'cooling', 'power'];
const ADJECTIVES = ['Compact', 'Rugged', 'Silent', 'Dense', 'Modular', 'Liquid-cooled', 'Redundant'];
const NOUNS = ['GPU tray', 'switch', 'NVMe shelf', 'rack PDU', 'heat exchanger', 'fabric card'];
const CITIES = ['Frankfurt', 'Helsinki', 'Dublin', 'Milan', 'Lyon', 'Oslo'];

interface CatalogProduct {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceCents: number;
  currency: string;
  category: string;
  tags: string[];
  rating: number;
  imageUrl: string;
  createdAt: string;
}

interface StockedProduct {
  id: string;
  stock: number;
  restockEta: string | null;
  warehouses: Array<{ code: string; city: string; quantity: number }>;
}

const productId = (index: number) => `p-${String(index + 1).padStart(4, '0')}`;

function catalogProduct(index: number): CatalogProduct {
  const adjective = ADJECTIVES[index % ADJECTIVES.length]!;
  const noun = NOUNS[index % NOUNS.length]!;
  const category = CATEGORIES[index % CATEGORIES.length]!;
  return {
    id: productId(index),
    sku: `SKU-${(100_000 + index * 7919).toString(36).toUpperCase()}`,
    name: `${adjective} ${noun} ${index + 1}`,
    description: `A ${adjective.toLowerCase()} ${noun} for ${category} in dense AI racks; revision ${(index % 5) + 1}, rated for continuous duty.`,
    priceCents: 10_000 + ((index * 3_571) % 900_000),
    currency: 'EUR',
    category,
    tags: [category, adjective.toLowerCase(), `gen${(index % 4) + 2}`],
    rating: Math.round((3 + ((index * 37) % 20) / 10) * 10) / 10,
    imageUrl: `https://img.example.test/products/${productId(index)}.webp`,
    createdAt: new Date(Date.UTC(2024, index % 12, (index % 28) + 1)).toISOString(),
  };
}

function stockedProduct(id: string): StockedProduct {
  const index = Number(id.slice(2)) - 1;
  const stock = (index * 13) % 97;
  return {
    id,
    stock,
    restockEta: stock < 10 ? new Date(Date.UTC(2025, index % 12, 15)).toISOString() : null,
    warehouses: [0, 1].map((slot) => ({
      code: `WH-${(index + slot) % 9}`,
      city: CITIES[(index + slot) % CITIES.length]!,
      quantity: Math.floor(stock / 2) + slot * (stock % 2),
    })),
  };
}

const CATALOG = Array.from({ length: PRODUCT_COUNT }, (_, index) => catalogProduct(index));
const CATALOG_BY_ID = new Map(CATALOG.map((product) => [product.id, product]));

function fixtureSchema(name: FixtureSubgraphName): GraphQLSchema {
  switch (name) {
    case 'catalog':
      return buildSubgraphSchema({
        typeDefs: parse(CATALOG_SDL),
        resolvers: {
          Query: {
            products: (_: unknown, args: { first: number }) => CATALOG.slice(0, Math.max(0, args.first)),
            product: (_: unknown, args: { id: string }) => CATALOG_BY_ID.get(args.id) ?? null,
          },
          Product: {
            __resolveReference: (reference: { id: string }) => CATALOG_BY_ID.get(reference.id) ?? null,
          },
        },
      });
    case 'inventory':
      return buildSubgraphSchema({
        typeDefs: parse(INVENTORY_SDL),
        resolvers: {
          Product: {
            __resolveReference: (reference: { id: string }) => (CATALOG_BY_ID.has(reference.id) ? stockedProduct(reference.id) : null),
          },
        },
      });
    default: {
      const unknown: never = name;
      throw new Error(`no fixture subgraph named ${String(unknown)}`);
    }
  }
}

/** The supergraph of the fixture subgraphs at the given URLs, as `npm run compose` would write it. */
export function composeFixtureSupergraph(urls: Record<FixtureSubgraphName, string>): string {
  const sdl: Record<FixtureSubgraphName, string> = { catalog: CATALOG_SDL, inventory: INVENTORY_SDL };
  const result = composeSupergraph(FIXTURE_SUBGRAPHS.map((name) => ({ name, url: urls[name], sdl: sdl[name] })));
  if (!result.ok) throw new Error(`the fixture subgraphs do not compose: ${result.errors.join('; ')}`);
  return result.supergraphSdl;
}

export interface FixtureSubgraphServer {
  server: Server;
  port: number;
}

/**
 * `POST /graphql` executes; `GET /hits` says how many GraphQL requests were
 * served, which is how the benchmark checks that every gateway makes the same
 * subgraph calls.
 */
export async function serveFixtureSubgraph(name: FixtureSubgraphName, port: number, host = '127.0.0.1'): Promise<FixtureSubgraphServer> {
  const schema = fixtureSchema(name);
  // Gateways send the same few query plans over and over: parse and validate each once.
  const documents = new Map<string, DocumentNode>();
  let hits = 0;

  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/hits') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ hits }));
      return;
    }
    if (req.method !== 'POST' || !req.url?.startsWith('/graphql')) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      hits += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; variables?: Record<string, unknown>; operationName?: string };
      let document = documents.get(body.query);
      if (!document) {
        document = parse(body.query);
        const errors = validate(schema, document);
        if (errors.length > 0) {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: errors.map((error) => ({ message: error.message })) }));
          return;
        }
        documents.set(body.query, document);
      }
      // _entities resolves through promises (@apollo/subgraph), the root fields do not.
      void Promise.resolve(execute({ schema, document, variableValues: body.variables ?? null, operationName: body.operationName ?? null })).then((result) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
