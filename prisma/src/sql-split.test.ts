import { splitSqlStatements } from './sql-split.js';

describe('splitSqlStatements', () => {
  it('splits at top-level semicolons and drops empty statements', () => {
    expect(splitSqlStatements('CREATE TABLE a (x int);\n\n-- done\nCREATE INDEX CONCURRENTLY i ON a (x);\n')).toEqual([
      'CREATE TABLE a (x int)',
      '-- done\nCREATE INDEX CONCURRENTLY i ON a (x)',
    ]);
  });

  it('keeps semicolons inside quotes, identifiers, dollar quotes and comments', () => {
    const sql = [
      "INSERT INTO t VALUES ('a;b', 'it''s;');",
      'CREATE TABLE "we;ird" (x int);',
      'CREATE FUNCTION f() RETURNS void AS $body$ BEGIN PERFORM 1; END; $body$ LANGUAGE plpgsql;',
      '/* a; b */ SELECT $$;$$;',
    ].join('\n');
    expect(splitSqlStatements(sql)).toEqual([
      "INSERT INTO t VALUES ('a;b', 'it''s;')",
      'CREATE TABLE "we;ird" (x int)',
      'CREATE FUNCTION f() RETURNS void AS $body$ BEGIN PERFORM 1; END; $body$ LANGUAGE plpgsql',
      '/* a; b */ SELECT $$;$$',
    ]);
  });
});
