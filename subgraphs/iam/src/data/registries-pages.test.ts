import { connectionOf, decodeCursor, encodeCursor, keysetPage, pageOf } from './registries-pages.js';

describe('registry keyset pages', () => {
  it('round-trips a cursor and reads the page after it', () => {
    const page = keysetPage({ first: 2, after: encodeCursor('gpuaas') });

    expect(page).toEqual({ limit: 2, afterKey: 'gpuaas' });
    expect(decodeCursor(encodeCursor('platform:organization:read'))).toBe('platform:organization:read');
  });

  it('refuses a cursor it did not issue and a page size out of range', () => {
    for (const args of [{ after: 'bm90LWEtY3Vyc29y' }, { after: '%%%' }, { first: 0 }, { first: 1000 }]) {
      expect(() => keysetPage(args)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST_INVALID_INPUT' }));
    }
  });

  it('trims the extra row into hasNextPage and gives each edge its key as cursor', () => {
    const page = keysetPage({ first: 2 });
    const connection = connectionOf(pageOf([{ id: 'a' }, { id: 'b' }, { id: 'c' }], page), (row) => row.id);

    expect(connection.edges.map((edge) => edge.node.id)).toEqual(['a', 'b']);
    expect(connection.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor('b') });
  });
});
