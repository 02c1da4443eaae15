import type { Queryable } from '@aifactory/events';
import { bigintOf } from '../domain/money.js';
import type { Tx } from './transactions.js';

/** Promotional credit granted to an organization, and what was left of it when it expired. */
export interface PromotionalGrantRecord {
  id: string;
  organizationId: string;
  currency: string;
  amount: bigint;
  /** What charges have not drawn yet (earliest expiry first); what its expiry takes back. */
  remaining: bigint;
  expiresAt: Date;
  grantPostingId: string;
  /** What the expiry took back (0 when it was all spent); null until it expired. */
  expiredAmount: bigint | null;
  /** The expiry's posting; null until it expired, and when nothing was left to take back. */
  expiryPostingId: string | null;
  createdAt: Date;
  expiredAt: Date | null;
}

interface GrantRow {
  id: string;
  organization_id: string;
  currency: string;
  amount: string;
  remaining: string;
  expires_at: Date;
  grant_posting_id: string;
  expired_amount: string | null;
  expiry_posting_id: string | null;
  created_at: Date;
  expired_at: Date | null;
}

const COLUMNS = 'id, organization_id, currency, amount, remaining, expires_at, grant_posting_id, expired_amount, expiry_posting_id, created_at, expired_at';

const grantOf = (row: GrantRow): PromotionalGrantRecord => ({
  id: row.id,
  organizationId: row.organization_id,
  currency: row.currency.trim(),
  amount: bigintOf(row.amount),
  remaining: bigintOf(row.remaining),
  expiresAt: row.expires_at,
  grantPostingId: row.grant_posting_id,
  expiredAmount: row.expired_amount === null ? null : bigintOf(row.expired_amount),
  expiryPostingId: row.expiry_posting_id,
  createdAt: row.created_at,
  expiredAt: row.expired_at,
});

export class PromotionalGrantStore {
  async byPosting(db: Queryable, postingId: string): Promise<PromotionalGrantRecord | undefined> {
    const { rows } = await db.query<GrantRow>(`SELECT ${COLUMNS} FROM promotional_grants WHERE grant_posting_id = $1`, [postingId]);
    return rows[0] === undefined ? undefined : grantOf(rows[0]);
  }

  /** Inserts the grant of a new posting; undefined when a concurrent grant of the same posting got there first. */
  async insert(
    tx: Tx,
    grant: { organizationId: string; currency: string; amount: bigint; expiresAt: Date; grantPostingId: string },
  ): Promise<PromotionalGrantRecord | undefined> {
    const { rows } = await tx.query<GrantRow>(
      `INSERT INTO promotional_grants (organization_id, currency, amount, remaining, expires_at, grant_posting_id) VALUES ($1, $2, $3, $3, $4, $5)
       ON CONFLICT (grant_posting_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [grant.organizationId, grant.currency, grant.amount.toString(), grant.expiresAt, grant.grantPostingId],
    );
    return rows[0] === undefined ? undefined : grantOf(rows[0]);
  }

  /** Unexpired grants due at `now`, in (expires_at, id) order after the cursor. */
  async due(db: Queryable, now: Date, after: { expiresAt: Date; id: string } | null, limit: number): Promise<{ id: string; organizationId: string; expiresAt: Date }[]> {
    const { rows } = await db.query<{ id: string; organization_id: string; expires_at: Date }>(
      `SELECT id, organization_id, expires_at FROM promotional_grants
       WHERE expired_at IS NULL AND expires_at <= $1
         AND ($2::timestamptz IS NULL OR (expires_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY expires_at, id
       LIMIT $4`,
      [now, after?.expiresAt ?? null, after?.id ?? null, limit],
    );
    return rows.map((row) => ({ id: row.id, organizationId: row.organization_id, expiresAt: row.expires_at }));
  }

  async lock(tx: Tx, id: string): Promise<PromotionalGrantRecord | undefined> {
    const { rows } = await tx.query<GrantRow>(`SELECT ${COLUMNS} FROM promotional_grants WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] === undefined ? undefined : grantOf(rows[0]);
  }

  /** The organization's unexpired grants with something left, earliest expiry first, locked (after its funds row). */
  async drawable(tx: Tx, organizationId: string): Promise<{ id: string; remaining: bigint }[]> {
    const { rows } = await tx.query<{ id: string; remaining: string }>(
      `SELECT id, remaining FROM promotional_grants WHERE organization_id = $1 AND expired_at IS NULL AND remaining > 0
       ORDER BY expires_at, id FOR UPDATE`,
      [organizationId],
    );
    return rows.map((row) => ({ id: row.id, remaining: bigintOf(row.remaining) }));
  }

  async draw(tx: Tx, takes: readonly { id: string; take: bigint }[]): Promise<void> {
    if (takes.length === 0) return;
    await tx.query(
      `UPDATE promotional_grants g SET remaining = g.remaining - d.take
       FROM unnest($1::uuid[], $2::int8[]) AS d(id, take) WHERE g.id = d.id`,
      [takes.map((t) => t.id), takes.map((t) => t.take.toString())],
    );
  }

  async markExpired(tx: Tx, id: string, expiredAmount: bigint, expiryPostingId: string | null): Promise<PromotionalGrantRecord> {
    const { rows } = await tx.query<GrantRow>(
      `UPDATE promotional_grants SET expired_at = CURRENT_TIMESTAMP, expired_amount = $2, expiry_posting_id = $3, remaining = 0
       WHERE id = $1 AND expired_at IS NULL
       RETURNING ${COLUMNS}`,
      [id, expiredAmount.toString(), expiryPostingId],
    );
    return grantOf(rows[0]!);
  }
}
