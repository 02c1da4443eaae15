/**
 * Drift checker: proves that schema.prisma describes exactly the tables the SQL
 * migrations created. The migrations are plain SQL and the Prisma schema is
 * written by hand beside them, so nothing else keeps the two in step; a
 * mismatch would only show up at run time as a failing query.
 *
 * Both sides are reduced to the same shape (tables, columns spelled the way
 * `format_type` spells them, normalized defaults, keys, enums) and compared.
 * Every mismatch becomes one sentence naming `schema.table[.column]`, in the
 * form "<what> in Prisma, <what> in database".
 */
import internals from '@prisma/internals';
import type pg from 'pg';

const { getDMMF } = internals;

type Datamodel = Awaited<ReturnType<typeof getDMMF>>['datamodel'];
type Model = Datamodel['models'][number];
type Field = Model['fields'][number];
type PrismaEnum = Datamodel['enums'][number];

export interface DriftReport {
  schema: string;
  differences: string[];
}

export interface DriftCheckOptions {
  /** Contents of schema.prisma. */
  datamodel: string;
  /** Connected to the database; any role that can read the catalogs. */
  client: pg.ClientBase;
  /** Postgres schema the migrations created, e.g. 'iam'. */
  schema: string;
  /** Tables that have no model on purpose; defaults to the migration runner's own table. */
  ignoreTables?: string[];
}

interface ColumnShape {
  /** As `format_type` prints it; null when Prisma's type could not be translated (reported separately). */
  type: string | null;
  /** null when Prisma cannot express it: scalar lists are nullable or not alike. */
  notNull: boolean | null;
  /** Normalized by `normalizeSqlDefault`; null for no default. */
  default: string | null;
  /** The Prisma field, to help find it in schema.prisma. */
  field?: string;
}

interface UniqueShape {
  columns: string[];
  /** Predicate of a partial unique index; Prisma cannot express one, so it never matches. */
  where: string | null;
}

interface ForeignKeyShape {
  columns: string[];
  /** schema-qualified */
  referencedTable: string;
  referencedColumns: string[];
  /** Prisma's referential action name; null when Prisma leaves it unspecified. */
  onDelete: string | null;
}

interface TableShape {
  columns: Map<string, ColumnShape>;
  /** Empty when there is none. */
  primaryKey: string[];
  uniques: Map<string, UniqueShape>;
  foreignKeys: Map<string, ForeignKeyShape>;
  /** The Prisma model, to help find it in schema.prisma. */
  model?: string;
}

interface SchemaShape {
  tables: Map<string, TableShape>;
  /** enum type name -> labels in sort order */
  enums: Map<string, string[]>;
}

/** Canonical spellings shared by both sides, so that equal defaults compare equal. */
const CURRENT_TIMESTAMP = 'CURRENT_TIMESTAMP';
const AUTOINCREMENT = 'autoincrement()';
/** `@default(dbgenerated())` without an expression: Prisma only knows that the database has some default. */
const ANY_DATABASE_DEFAULT = 'dbgenerated()';

export async function checkSchemaDrift(options: DriftCheckOptions): Promise<DriftReport> {
  const { schema, client } = options;
  const ignoreTables = new Set(options.ignoreTables ?? ['_prisma_migrations']);
  const { datamodel } = await getDMMF({ datamodel: options.datamodel });
  const expected = expectedShape(datamodel, schema);
  const actual = await loadDatabaseShape(client, schema);
  for (const table of ignoreTables) actual.tables.delete(table);
  return { schema, differences: [...expected.problems, ...compareShapes(schema, expected.shape, actual)] };
}

// ---------------------------------------------------------------------------
// Expected shape, from the Prisma DMMF

function expectedShape(datamodel: Datamodel, schema: string): { shape: SchemaShape; problems: string[] } {
  const problems: string[] = [];
  const modelsByName = new Map(datamodel.models.map((model) => [model.name, model]));
  const enumsByName = new Map(datamodel.enums.map((prismaEnum) => [prismaEnum.name, prismaEnum]));
  const tables = new Map<string, TableShape>();

  for (const model of datamodel.models) {
    const table = tableName(model);
    const columns = new Map<string, ColumnShape>();
    for (const field of model.fields) {
      if (field.kind !== 'scalar' && field.kind !== 'enum') continue;
      const type = expectedColumnType(field, enumsByName);
      if (type === null) {
        const nativeType = field.nativeType ? ` @db.${field.nativeType[0]}` : '';
        problems.push(
          `${place(schema, table, [columnName(field)])}: type ${field.type}${nativeType} in Prisma is not supported by the drift checker`,
        );
      }
      columns.set(columnName(field), {
        type,
        notNull: field.isList ? null : field.isRequired,
        default: expectedDefault(field, enumsByName),
        field: `${model.name}.${field.name}`,
      });
    }

    const primaryKey = model.primaryKey?.fields ?? model.fields.filter((field) => field.isId).map((field) => field.name);
    const uniqueFieldSets = [
      ...model.fields.filter((field) => field.isUnique).map((field) => [field.name]),
      ...model.uniqueFields,
    ];
    const uniques = new Map<string, UniqueShape>();
    for (const fields of uniqueFieldSets) {
      const unique = { columns: columnsOf(model, fields), where: null };
      uniques.set(uniqueKey(unique), unique);
    }

    const foreignKeys = new Map<string, ForeignKeyShape>();
    for (const field of model.fields) {
      // Only the side of a relation that holds `fields: [...]` owns the foreign key.
      if (field.kind !== 'object' || !field.relationFromFields?.length) continue;
      const target = modelsByName.get(field.type);
      if (!target) continue;
      const foreignKey = {
        columns: columnsOf(model, field.relationFromFields),
        referencedTable: `${schema}.${tableName(target)}`,
        referencedColumns: columnsOf(target, field.relationToFields ?? []),
        onDelete: field.relationOnDelete ?? null,
      };
      foreignKeys.set(foreignKeyKey(foreignKey), foreignKey);
    }

    tables.set(table, {
      columns,
      primaryKey: columnsOf(model, primaryKey),
      uniques,
      foreignKeys,
      model: model.name,
    });
  }

  const enums = new Map(
    datamodel.enums.map((prismaEnum) => [
      enumTypeName(prismaEnum),
      prismaEnum.values.map((value) => value.dbName ?? value.name),
    ]),
  );
  return { shape: { tables, enums }, problems };
}

function tableName(model: Model): string {
  return model.dbName ?? model.name;
}

function columnName(field: Field): string {
  return field.dbName ?? field.name;
}

function enumTypeName(prismaEnum: PrismaEnum): string {
  return prismaEnum.dbName ?? prismaEnum.name;
}

/** Field names -> column names; DMMF has already validated that the fields exist. */
function columnsOf(model: Model, fieldNames: readonly string[]): string[] {
  return fieldNames.map((name) => {
    const field = model.fields.find((candidate) => candidate.name === name);
    return field ? columnName(field) : name;
  });
}

/** The column types Prisma's Postgres connector creates for a field without `@db.*`. */
const DEFAULT_COLUMN_TYPES: Readonly<Record<string, string>> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Decimal: 'numeric(65,30)',
  Float: 'double precision',
  Json: 'jsonb',
  Bytes: 'bytea',
};

/**
 * `@db.*` native types, as `format_type` prints them. Arguments (length,
 * precision, scale) are spliced in where the `(…)` marker is; without
 * arguments Postgres uses the type's own default, which `format_type` spells
 * without a modifier, except CHAR and BIT, which mean length 1.
 */
const NATIVE_COLUMN_TYPES: Readonly<Record<string, { type: string; withoutArguments?: string }>> = {
  Text: { type: 'text' },
  Char: { type: 'character(…)', withoutArguments: 'character(1)' },
  VarChar: { type: 'character varying(…)' },
  Citext: { type: 'citext' },
  Uuid: { type: 'uuid' },
  Xml: { type: 'xml' },
  Inet: { type: 'inet' },
  Bit: { type: 'bit(…)', withoutArguments: 'bit(1)' },
  VarBit: { type: 'bit varying(…)' },
  SmallInt: { type: 'smallint' },
  Integer: { type: 'integer' },
  BigInt: { type: 'bigint' },
  Oid: { type: 'oid' },
  Decimal: { type: 'numeric(…)' },
  Money: { type: 'money' },
  Real: { type: 'real' },
  DoublePrecision: { type: 'double precision' },
  Boolean: { type: 'boolean' },
  Date: { type: 'date' },
  Time: { type: 'time(…) without time zone' },
  Timetz: { type: 'time(…) with time zone' },
  Timestamp: { type: 'timestamp(…) without time zone' },
  Timestamptz: { type: 'timestamp(…) with time zone' },
  Json: { type: 'json' },
  JsonB: { type: 'jsonb' },
  ByteA: { type: 'bytea' },
};

/** null when the field's type cannot be translated; the caller reports that. */
function expectedColumnType(field: Field, enumsByName: ReadonlyMap<string, PrismaEnum>): string | null {
  const base = field.kind === 'enum' ? enumBaseType(field, enumsByName) : scalarBaseType(field);
  if (base === null) return null;
  return field.isList ? `${base}[]` : base;
}

function enumBaseType(field: Field, enumsByName: ReadonlyMap<string, PrismaEnum>): string {
  const prismaEnum = enumsByName.get(field.type);
  return prismaEnum ? enumTypeName(prismaEnum) : field.type;
}

function scalarBaseType(field: Field): string | null {
  if (!field.nativeType) return DEFAULT_COLUMN_TYPES[field.type] ?? null;
  const [name, args] = field.nativeType;
  const native = NATIVE_COLUMN_TYPES[name];
  if (!native) return null;
  if (args.length === 0) return native.withoutArguments ?? native.type.replace('(…)', '');
  return native.type.replace('…', args.join(','));
}

function expectedDefault(field: Field, enumsByName: ReadonlyMap<string, PrismaEnum>): string | null {
  const value = field.default;
  if (value === undefined) return null;
  const literal = (item: string | number | boolean): string =>
    field.kind === 'enum' ? enumValueLabel(field, String(item), enumsByName) : canonicalNumber(String(item));
  if (typeof value !== 'object') return literal(value);
  if ('name' in value) return functionDefault(value.name, value.args);
  return `{${value.map(literal).join(',')}}`;
}

function functionDefault(name: string, args: readonly (string | number)[]): string | null {
  switch (name) {
    case 'now':
      return CURRENT_TIMESTAMP;
    case 'autoincrement':
      return AUTOINCREMENT;
    case 'dbgenerated': {
      const [expression] = args;
      return typeof expression === 'string' ? normalizeSqlDefault(expression) : ANY_DATABASE_DEFAULT;
    }
    // Generated by the Prisma client when it inserts; the column has no default.
    case 'uuid':
    case 'cuid':
    case 'nanoid':
    case 'ulid':
      return null;
    default:
      // Any other function cannot be a database default, so it reports as drift.
      return `${name}()`;
  }
}

/** Enum defaults name the Prisma value; the database stores its @map label. */
function enumValueLabel(field: Field, value: string, enumsByName: ReadonlyMap<string, PrismaEnum>): string {
  const enumValue = enumsByName.get(field.type)?.values.find((candidate) => candidate.name === value);
  return enumValue?.dbName ?? value;
}

// ---------------------------------------------------------------------------
// Actual shape, from the Postgres catalogs

/** Ordinary and partitioned tables of the schema; partitions belong to their parent. */
const TABLES_OF_SCHEMA = `n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition`;

interface TableRow {
  table_name: string;
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  type: string;
  not_null: boolean;
  is_identity: boolean;
  default_expr: string | null;
}

interface IndexRow {
  table_name: string;
  is_primary: boolean;
  columns: string[];
  predicate: string | null;
}

interface ForeignKeyRow {
  table_name: string;
  columns: string[];
  referenced_table: string;
  referenced_columns: string[];
  on_delete: string;
}

interface EnumRow {
  name: string;
  labels: string[];
}

/** pg_constraint.confdeltype -> Prisma's referential action names. */
const ON_DELETE_ACTIONS: Readonly<Record<string, string>> = {
  a: 'NoAction',
  r: 'Restrict',
  c: 'Cascade',
  n: 'SetNull',
  d: 'SetDefault',
};

async function loadDatabaseShape(client: pg.ClientBase, schema: string): Promise<SchemaShape> {
  // One after the other: a pg client runs one query at a time anyway.
  const tables = await client.query<TableRow>(
    `SELECT c.relname::text AS table_name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${TABLES_OF_SCHEMA}
      ORDER BY 1`,
    [schema],
  );
  // format_type qualifies a type with its schema unless that schema is on
  // the session's search_path, so types outside pg_catalog (enums, citext)
  // are spelled by bare name to keep the result independent of the session.
  // Generated columns keep their expression in pg_attrdef too, but that is
  // not a default and Prisma has no way to describe it.
  const columns = await client.query<ColumnRow>(
    `SELECT c.relname::text AS table_name,
            a.attname::text AS column_name,
            CASE WHEN bn.nspname = 'pg_catalog' THEN format_type(a.atttypid, a.atttypmod)
                 ELSE b.typname::text || CASE WHEN t.typcategory = 'A' THEN '[]' ELSE '' END
            END AS type,
            a.attnotnull AS not_null,
            a.attidentity <> '' AS is_identity,
            CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default_expr
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_type b ON b.oid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END
       JOIN pg_namespace bn ON bn.oid = b.typnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE ${TABLES_OF_SCHEMA} AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
    [schema],
  );
  // Every unique constraint is backed by a unique index, so pg_index sees
  // constraints and plain unique indexes alike. Key columns only: INCLUDE
  // columns do not take part in uniqueness. An expression has no
  // pg_attribute row, so it is shown as pg_get_indexdef prints it.
  const indexes = await client.query<IndexRow>(
    `SELECT c.relname::text AS table_name,
            i.indisprimary AS is_primary,
            array(SELECT coalesce(a.attname::text, pg_get_indexdef(i.indexrelid, k + 1, true))
                    FROM generate_series(0, i.indnkeyatts - 1) AS k
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k]
                   ORDER BY k) AS columns,
            pg_get_expr(i.indpred, i.indrelid, true) AS predicate
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${TABLES_OF_SCHEMA} AND (i.indisunique OR i.indisprimary)
      ORDER BY c.relname, i.indexrelid`,
    [schema],
  );
  // conparentid <> 0 marks the copies Postgres makes for each partition.
  const foreignKeys = await client.query<ForeignKeyRow>(
    `SELECT c.relname::text AS table_name,
            array(SELECT a.attname::text
                    FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                   ORDER BY k.position) AS columns,
            rn.nspname::text || '.' || rc.relname::text AS referenced_table,
            array(SELECT a.attname::text
                    FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                   ORDER BY k.position) AS referenced_columns,
            con.confdeltype::text AS on_delete
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class rc ON rc.oid = con.confrelid
       JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE ${TABLES_OF_SCHEMA} AND con.contype = 'f' AND con.conparentid = 0
      ORDER BY c.relname, con.conname`,
    [schema],
  );
  const enums = await client.query<EnumRow>(
    `SELECT t.typname::text AS name,
            array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = $1 AND t.typtype = 'e'
      ORDER BY 1`,
    [schema],
  );

  const shape: SchemaShape = { tables: new Map(), enums: new Map() };
  for (const row of tables.rows) {
    shape.tables.set(row.table_name, { columns: new Map(), primaryKey: [], uniques: new Map(), foreignKeys: new Map() });
  }
  const tableOf = (name: string): TableShape => {
    const table = shape.tables.get(name);
    if (!table) throw new Error(`catalog row for unknown table ${schema}.${name}`);
    return table;
  };

  for (const row of columns.rows) {
    tableOf(row.table_name).columns.set(row.column_name, {
      type: row.type,
      notNull: row.not_null,
      // Identity columns have no pg_attrdef entry, but are Prisma's autoincrement() just like serial.
      default: row.is_identity ? AUTOINCREMENT : row.default_expr === null ? null : normalizeSqlDefault(row.default_expr),
    });
  }
  for (const row of indexes.rows) {
    const table = tableOf(row.table_name);
    if (row.is_primary) {
      table.primaryKey = row.columns;
    } else {
      const unique = { columns: row.columns, where: row.predicate };
      table.uniques.set(uniqueKey(unique), unique);
    }
  }
  for (const row of foreignKeys.rows) {
    const foreignKey = {
      columns: row.columns,
      referencedTable: row.referenced_table,
      referencedColumns: row.referenced_columns,
      onDelete: ON_DELETE_ACTIONS[row.on_delete] ?? row.on_delete,
    };
    tableOf(row.table_name).foreignKeys.set(foreignKeyKey(foreignKey), foreignKey);
  }
  for (const row of enums.rows) shape.enums.set(row.name, row.labels);
  return shape;
}

// ---------------------------------------------------------------------------
// Default normalization, shared by both sides

/**
 * A cast as pg_get_expr prints it: `::text`, `::"OrgStatus"`,
 * `::iam.org_status`, `::character varying(64)`, `::timestamp(3) with time zone`, `::text[]`.
 */
const CAST =
  /::(?:"[^"]*"|[a-z_][\w$]*)(?:\.(?:"[^"]*"|[a-z_][\w$]*))?(?:\s+(?:varying|precision))?(?:\(\d+(?:,\s*\d+)?\))?(?:\s+with(?:out)?\s+time\s+zone)?(?:\[\])*/gi;
const STRING_LITERAL = /^'((?:[^']|'')*)'$/s;
const ARRAY_CONSTRUCTOR = /^ARRAY\[(.*)\]$/is;
const ARRAY_ELEMENT = /'((?:[^']|'')*)'|[^,\s]+/g;
/** All mean "start of the current transaction". */
const CURRENT_TIMESTAMP_SPELLINGS = /^(?:now\(\)|CURRENT_TIMESTAMP(?:\(\d+\))?|transaction_timestamp\(\))$/i;

/**
 * Reduces a default expression to a canonical text: the value of a literal
 * without its quotes and cast, `{a,b}` for an array, one spelling for the
 * current timestamp and for sequences, and otherwise the expression without
 * casts and whitespace.
 */
function normalizeSqlDefault(expression: string): string {
  if (/^nextval\(/i.test(expression.trim())) return AUTOINCREMENT;
  const uncast = expression.replace(CAST, '').trim();

  const literal = STRING_LITERAL.exec(uncast);
  if (literal) return canonicalNumber(unquote(literal[1] ?? ''));

  const array = ARRAY_CONSTRUCTOR.exec(uncast);
  if (array) {
    const elements = [...(array[1] ?? '').matchAll(ARRAY_ELEMENT)].map((element) =>
      element[1] === undefined ? element[0] : unquote(element[1]),
    );
    return `{${elements.map(canonicalNumber).join(',')}}`;
  }

  const compact = uncast.replace(/\s+/g, '');
  return CURRENT_TIMESTAMP_SPELLINGS.test(compact) ? CURRENT_TIMESTAMP : canonicalNumber(compact);
}

function unquote(body: string): string {
  return body.replaceAll("''", "'");
}

/** `1.50` and `1.5`, `+7` and `7`: Prisma and Postgres print the same number differently. */
function canonicalNumber(text: string): string {
  const match = /^([+-]?)0*(\d+?)(?:\.(\d*?)0*)?$/.exec(text);
  if (!match) return text;
  const [, sign, integer, fraction] = match;
  return `${sign === '-' ? '-' : ''}${integer}${fraction ? `.${fraction}` : ''}`;
}

// ---------------------------------------------------------------------------
// Comparison

function compareShapes(schema: string, expected: SchemaShape, actual: SchemaShape): string[] {
  return [
    ...compareKeyed(expected.tables, actual.tables, {
      missing: (table, shape) => `${place(schema, table)}: table in Prisma (model ${shape.model}), missing in database`,
      extra: (table) => `${place(schema, table)}: table in database, missing in Prisma`,
      differ: (table, expectedTable, actualTable) => compareTables(schema, table, expectedTable, actualTable),
    }),
    ...compareKeyed(expected.enums, actual.enums, {
      missing: (name) => `${place(schema, name)}: enum in Prisma, missing in database`,
      extra: (name) => `${place(schema, name)}: enum in database, missing in Prisma`,
      differ: (name, expectedLabels, actualLabels) =>
        expectedLabels.join(',') === actualLabels.join(',')
          ? []
          : [
              `${place(schema, name)}: enum values (${expectedLabels.join(', ')}) in Prisma, (${actualLabels.join(', ')}) in database`,
            ],
    }),
  ];
}

function compareTables(schema: string, table: string, expected: TableShape, actual: TableShape): string[] {
  const differences = compareKeyed(expected.columns, actual.columns, {
    missing: (column, shape) => `${place(schema, table, [column])}: column in Prisma (field ${shape.field}), missing in database`,
    extra: (column) => `${place(schema, table, [column])}: column in database, missing in Prisma`,
    differ: (column, expectedColumn, actualColumn) =>
      compareColumns(place(schema, table, [column]), expectedColumn, actualColumn),
  });

  if (expected.primaryKey.join(',') !== actual.primaryKey.join(',')) {
    differences.push(
      `${place(schema, table)}: primary key ${columnList(expected.primaryKey)} in Prisma, ${columnList(actual.primaryKey)} in database`,
    );
  }

  differences.push(
    ...compareKeyed(expected.uniques, actual.uniques, {
      missing: (_, unique) => `${place(schema, table, unique.columns)}: unique in Prisma, missing in database`,
      extra: (_, unique) =>
        `${place(schema, table, unique.columns)}: unique${unique.where ? ` WHERE ${unique.where}` : ''} in database, missing in Prisma`,
    }),
    ...compareKeyed(expected.foreignKeys, actual.foreignKeys, {
      missing: (_, foreignKey) =>
        `${place(schema, table, foreignKey.columns)}: foreign key to ${foreignKeyTarget(foreignKey)} in Prisma, missing in database`,
      extra: (_, foreignKey) =>
        `${place(schema, table, foreignKey.columns)}: foreign key to ${foreignKeyTarget(foreignKey)} in database, missing in Prisma`,
      differ: (_, expectedKey, actualKey) =>
        expectedKey.onDelete === null || expectedKey.onDelete === actualKey.onDelete
          ? []
          : [
              `${place(schema, table, expectedKey.columns)}: foreign key to ${foreignKeyTarget(expectedKey)} ON DELETE ${expectedKey.onDelete} in Prisma, ${actualKey.onDelete} in database`,
            ],
    }),
  );
  return differences;
}

function compareColumns(where: string, expected: ColumnShape, actual: ColumnShape): string[] {
  const differences: string[] = [];
  if (expected.type !== null && expected.type !== actual.type) {
    differences.push(`${where}: type ${expected.type} in Prisma, ${actual.type} in database`);
  }
  if (expected.notNull !== null && expected.notNull !== actual.notNull) {
    differences.push(`${where}: ${nullability(expected.notNull)} in Prisma, ${nullability(actual.notNull)} in database`);
  }
  const defaultMatches =
    expected.default === ANY_DATABASE_DEFAULT ? actual.default !== null : expected.default === actual.default;
  if (!defaultMatches) {
    differences.push(`${where}: default ${expected.default ?? 'none'} in Prisma, ${actual.default ?? 'none'} in database`);
  }
  return differences;
}

/**
 * Pairs up two keyed collections: keys only expected are missing, keys only
 * present are extra, and keys on both sides are compared further.
 */
function compareKeyed<T>(
  expected: ReadonlyMap<string, T>,
  actual: ReadonlyMap<string, T>,
  report: {
    missing: (key: string, expected: T) => string;
    extra: (key: string, actual: T) => string;
    differ?: (key: string, expected: T, actual: T) => string[];
  },
): string[] {
  const differences: string[] = [];
  for (const [key, expectedValue] of expected) {
    const actualValue = actual.get(key);
    if (actualValue === undefined) differences.push(report.missing(key, expectedValue));
    else differences.push(...(report.differ?.(key, expectedValue, actualValue) ?? []));
  }
  for (const [key, actualValue] of actual) {
    if (!expected.has(key)) differences.push(report.extra(key, actualValue));
  }
  return differences;
}

function uniqueKey(unique: UniqueShape): string {
  return `${unique.columns.join(',')} WHERE ${unique.where ?? ''}`;
}

function foreignKeyKey(foreignKey: ForeignKeyShape): string {
  return `${foreignKey.columns.join(',')} -> ${foreignKeyTarget(foreignKey)}`;
}

function foreignKeyTarget(foreignKey: ForeignKeyShape): string {
  return `${foreignKey.referencedTable}${columnList(foreignKey.referencedColumns)}`;
}

/** `schema.table`, `schema.table.column` or `schema.table.(a, b)`. */
function place(schema: string, table: string, columns: readonly string[] = []): string {
  const base = `${schema}.${table}`;
  if (columns.length === 0) return base;
  return columns.length === 1 ? `${base}.${columns[0]}` : `${base}.${columnList(columns)}`;
}

function columnList(columns: readonly string[]): string {
  return columns.length === 0 ? 'none' : `(${columns.join(', ')})`;
}

function nullability(notNull: boolean | null): string {
  return notNull ? 'NOT NULL' : 'nullable';
}
