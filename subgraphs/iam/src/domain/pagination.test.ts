import { connectionOf, encodeCursor, MAX_PAGE_SIZE, pageRequest } from './pagination.js';

const row = (n: number) => ({ id: `00000000-0000-0000-0000-00000000000${n}`, createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)) });

describe('keyset pages', () => {
  it('round-trips a cursor to the (createdAt, id) it was made from', () => {
    const cursor = encodeCursor(row(3));

    expect(pageRequest({ first: 2, after: cursor })).toEqual({ first: 2, after: row(3) });
  });

  it('says another page follows only when the extra row was found', () => {
    const page = { first: 2, after: null };

    const full = connectionOf([row(1), row(2), row(3)], page);
    const last = connectionOf([row(1), row(2)], page);

    expect(full.edges.map((edge) => edge.node.id)).toEqual([row(1).id, row(2).id]);
    expect(full.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeCursor(row(2)) });
    expect(last.pageInfo.hasNextPage).toBe(false);
  });

  it('refuses a forged cursor and a page size out of range', () => {
    expect(() => pageRequest({ after: 'not-a-cursor' })).toThrow(expect.objectContaining({ code: 'BAD_REQUEST_INVALID_INPUT' }));
    expect(() => pageRequest({ first: 0 })).toThrow(expect.objectContaining({ code: 'BAD_REQUEST_INVALID_INPUT' }));
    expect(() => pageRequest({ first: MAX_PAGE_SIZE + 1 })).toThrow(expect.objectContaining({ code: 'BAD_REQUEST_INVALID_INPUT' }));
  });
});
