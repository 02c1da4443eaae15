/**
 * How promotional credit is attributed to its grants: a charge draws it
 * earliest expiry first, each grant at most what it has left, so a grant's
 * `remaining` is exactly what its expiry takes back.
 */
export function drawEarliestFirst(grants: readonly { id: string; remaining: bigint }[], amount: bigint): { id: string; take: bigint }[] {
  const takes: { id: string; take: bigint }[] = [];
  let left = amount;
  for (const grant of grants) {
    if (left <= 0n) break;
    const take = grant.remaining < left ? grant.remaining : left;
    if (take > 0n) takes.push({ id: grant.id, take });
    left -= take;
  }
  return takes;
}

/**
 * What an expiring grant takes back: what charges left of it, never more than
 * the promotional balance (which only grants fill, so the two agree unless
 * the balance was corrected by hand).
 */
export function expiringAmount(remaining: bigint, promotionalBalance: bigint): bigint {
  if (promotionalBalance <= 0n) return 0n;
  return remaining < promotionalBalance ? remaining : promotionalBalance;
}
