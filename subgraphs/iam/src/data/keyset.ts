import type { PageRequest } from '../domain/pagination.js';

/**
 * The `where`, `orderBy` and `take` of one keyset page over (createdAt, id),
 * for any model that has both: oldest first, ties broken by id, one row
 * more than asked so the caller knows whether another page exists.
 */
export function keysetPage(page: PageRequest) {
  const after = page.after
    ? { OR: [{ createdAt: { gt: page.after.createdAt } }, { createdAt: page.after.createdAt, id: { gt: page.after.id } }] }
    : {};
  return {
    after,
    orderBy: [{ createdAt: 'asc' as const }, { id: 'asc' as const }],
    take: page.first + 1,
  };
}
