import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import type { BalanceStore, FundsSnapshot, PoolSpend } from '../data/balances.js';
import type { HierarchyStore } from '../data/hierarchy.js';
import { connectionOf, emptyConnection, pageRequest, type Connection } from './pagination.js';
import { periodOf } from './money.js';

/** An organization's money is read with this scope on the organization (org_admin, viewers, platform admins). */
export const BILLING_READ = 'platform:billing:read';

const uuid = z.uuid();
const MONTH = /^([0-9]{4})-(0[1-9]|1[0-2])$/;

/** An organization's balance as of one instant. Every amount is in minor units of `currency`. */
export interface Balance {
  organizationId: string;
  currency: string;
  /** What a reservation may still take: paid + promotional - reserved (negative after delivered service outran the money). */
  available: bigint;
  paid: bigint;
  promotional: bigint;
  reserved: bigint;
  asOf: Date;
  verifiedAt: Date | null;
}

/** Spend and open reservations of one pool (organization or project) in one calendar month (UTC). */
export interface Spend {
  organizationId: string;
  /** The project, for a project's spend; null for the organization's. */
  projectId: string | null;
  /** `YYYY-MM`. */
  period: string;
  currency: string;
  spent: bigint;
  reserved: bigint;
}

export function balanceOf(funds: FundsSnapshot): Balance {
  return {
    organizationId: funds.organizationId,
    currency: funds.currency,
    available: funds.paid + funds.promotional - funds.reserved,
    paid: funds.paid,
    promotional: funds.promotional,
    reserved: funds.reserved,
    asOf: funds.asOf,
    verifiedAt: funds.verifiedAt,
  };
}

/**
 * The budget month a client names, `YYYY-MM`, as budget rows store it
 * (`YYYY-MM-01`); the current UTC month when left out.
 */
export function periodArgument(text: string | null | undefined, now: Date = new Date()): string {
  if (text === null || text === undefined) return periodOf(now);
  if (!MONTH.test(text)) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'period must be a calendar month such as 2026-05', { details: { field: 'period' } });
  }
  return `${text}-01`;
}

const monthOf = (period: string) => period.slice(0, 7);

function spendOf(pool: PoolSpend): Spend {
  return {
    organizationId: pool.organizationId,
    projectId: pool.level === 'project' ? pool.poolId : null,
    period: monthOf(pool.period),
    currency: pool.currency,
    spent: pool.spent,
    reserved: pool.reserved,
  };
}

/**
 * Balances and spend attribution (the balance read model). Every read is
 * checked with `platform:billing:read` on the organization, or on the
 * project for a project's own spend, so nobody sees another
 * organization's money.
 */
export class Balances {
  constructor(
    private readonly store: BalanceStore,
    private readonly hierarchy: HierarchyStore,
    private readonly pool: pg.Pool,
  ) {}

  /** Null before billing has opened the organization's accounts. */
  async balance(access: Access, organizationId: string): Promise<Balance | null> {
    if (!uuid.safeParse(organizationId).success) return null;
    access.require(BILLING_READ, { organizationId });
    const funds = await this.store.funds(organizationId);
    return funds ? balanceOf(funds) : null;
  }

  /** The organization's whole spend in a month (every project, and spend no project carried); null before billing knows it. */
  async organizationSpend(access: Access, organizationId: string, period: string | null | undefined): Promise<Spend | null> {
    const month = periodArgument(period);
    if (!uuid.safeParse(organizationId).success) return null;
    access.require(BILLING_READ, { organizationId });
    const pool = await this.store.poolSpend('organization', organizationId, month);
    if (pool) return spendOf(pool);
    const funds = await this.store.funds(organizationId);
    return funds ? { organizationId, projectId: null, period: monthOf(month), currency: funds.currency, spent: 0n, reserved: 0n } : null;
  }

  /** Per-project attribution: each project that spent or holds something in the month, by project id. */
  async projectSpend(
    access: Access,
    organizationId: string,
    period: string | null | undefined,
    args: { first?: number | null; after?: string | null },
  ): Promise<Connection<Spend>> {
    const month = periodArgument(period);
    const page = pageRequest('id', args);
    if (!uuid.safeParse(organizationId).success) return emptyConnection();
    access.require(BILLING_READ, { organizationId });
    const rows = await this.store.projectSpend(organizationId, month, page.after, page.first + 1);
    return connectionOf('id', rows.map(spendOf), page, (spend) => spend.projectId!);
  }

  /** A project's spend in a month; null while billing has not heard of the project. */
  async spendOfProject(access: Access, projectId: string, period: string | null | undefined): Promise<Spend | null> {
    const month = periodArgument(period);
    if (!uuid.safeParse(projectId).success) return null;
    const project = await this.hierarchy.findProject(this.pool, projectId);
    if (!project) return null;
    access.require(BILLING_READ, { organizationId: project.organizationId, departmentId: project.departmentId, projectId });
    const pool = await this.store.poolSpend('project', projectId, month);
    if (pool) return spendOf(pool);
    const funds = await this.store.funds(project.organizationId);
    if (!funds) return null;
    return { organizationId: project.organizationId, projectId, period: monthOf(month), currency: funds.currency, spent: 0n, reserved: 0n };
  }
}
