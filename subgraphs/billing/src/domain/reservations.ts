import { createHash } from 'node:crypto';
import type pg from 'pg';
import { effectivePolicy, parsePolicyValue, policyLimits, requireFreshPolicy, type PolicySnapshot, type PolicyTarget } from '@aifactory/authz';
import type { Actor } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import {
  ReservationStore,
  type HoldOutcome,
  type LockedReservation,
  type PoolLimit,
  type ReservationRecord,
} from '../data/reservation-store.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import type { HoldRelease, Ledger } from './ledger.js';
import { MAX_AMOUNT } from './money.js';

export const MAX_TTL_KEY = 'billing.reservation.max_ttl';
export const BUDGET_KEY = 'billing.budget.monthly_spend';
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
export const MAX_DESCRIPTION_LENGTH = 500;

/** IAM's policy as billing reads it (the access read model): the organization's snapshot and how old the model is. */
export interface PolicySource {
  ageMs(): number | null;
  policy(organizationId: string): PolicySnapshot | undefined;
}

export interface ReserveRequest {
  /** The platform service reserving (its service identity's name): reservations are its own. */
  caller: string;
  organizationId: string;
  projectId: string;
  /** Minor units of the organization's billing currency, above zero. */
  amount: bigint;
  /** How long the hold lasts unless posted or voided: 1 s up to policy's `billing.reservation.max_ttl`. */
  ttlSeconds: number;
  /** The caller's key for this reservation: the same request again returns the first reservation. */
  idempotencyKey: string;
  description?: string | null;
  /** Who the caller acts for, else the caller itself. */
  actor: Actor;
  correlationId: string;
}

export interface ReserveResult {
  reservation: ReservationRecord;
  /** False when the idempotency key was used before: this is the first reservation, unchanged. */
  created: boolean;
}

export interface ResolveResult {
  /** As it is now: `posted`, `voided` or `expired` (expired when its time was up before it was posted or voided). */
  reservation: ReservationRecord;
  /** False when it was resolved before: nothing changed and this is the first result. */
  resolved: boolean;
}

export type ReservationOutcome = 'reserved' | 'refused_funds' | 'refused_budget' | 'posted' | 'voided' | 'expired';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Two-phase spending (TigerBeetle's pending transfers): a platform service
 * reserves before it delivers, then posts what the delivery cost or voids
 * the reservation; a reservation left alone expires. A hold counts against
 * the organization's funds (paid + promotional - reserved) and against every
 * monthly budget that applies (`billing.budget.monthly_spend` on the
 * project, its department and the organization), all in one statement, so
 * concurrent reservations never overspend either. Each reservation is
 * resolved exactly once; asking again returns that first resolution.
 */
export class Reservations {
  private readonly store = new ReservationStore();
  private outcomes: Counter<'outcome'> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
  ) {}

  /** The registry exists once the subgraph has started; outcomes before that are not counted. */
  attachMetrics(metrics: ServiceMetrics): void {
    this.outcomes = metrics.counter(
      'aif_billing_reservations_total',
      'Reservations by outcome: reserved, refused_funds, refused_budget, posted, voided, expired.',
      ['outcome'],
    );
  }

  async reserve(request: ReserveRequest, policy: PolicySource): Promise<ReserveResult> {
    checkRequest(request);
    const fingerprint = fingerprintOf(request);
    const earlier = await this.store.findByKey(this.pool, request.caller, request.idempotencyKey);
    if (earlier) return { reservation: sameRequest(earlier, fingerprint), created: false };

    const project = await this.store.project(this.pool, request.projectId);
    if (!project || project.organizationId !== request.organizationId) {
      throw new AppError('BILLING_PROJECT_UNKNOWN', 'Billing does not know this project in this organization (yet)', {
        details: { organizationId: request.organizationId, projectId: request.projectId },
      });
    }
    if (project.status !== 'active') {
      throw new AppError('BILLING_PROJECT_ARCHIVED', 'The project is archived: nothing more is reserved for it', { details: { projectId: request.projectId } });
    }
    const snapshot = freshSnapshot(policy, request.organizationId);
    const target: PolicyTarget = { projectId: request.projectId, departmentId: project.departmentId };
    checkTtl(snapshot, target, request.ttlSeconds);
    const pools = budgetPools(snapshot, target, request.organizationId, project.departmentId, request.projectId);

    let outcome: HoldOutcome;
    try {
      outcome = await inTransaction(this.pool, async (tx) => {
        const held = await this.store.hold(tx, {
          organizationId: request.organizationId,
          departmentId: project.departmentId,
          projectId: request.projectId,
          amount: request.amount,
          ttlSeconds: request.ttlSeconds,
          caller: request.caller,
          idempotencyKey: request.idempotencyKey,
          fingerprint,
          description: request.description ?? null,
          actor: request.actor,
          correlationId: request.correlationId,
          pools,
        });
        // Something did not fit: undo whatever part of the hold applied.
        if (!held.reservation) throw new HoldRefused(held);
        return held;
      });
    } catch (error) {
      // The same key reserved concurrently and committed first (a retry racing its original): this
      // attempt either found no room left after that hold (refused) or collided on the key. Either
      // way the answer is the first reservation, never a refusal beside a hold that exists.
      if (error instanceof HoldRefused || (error as { code?: string }).code === '23505') {
        const first = await this.store.findByKey(this.pool, request.caller, request.idempotencyKey);
        if (first) return { reservation: sameRequest(first, fingerprint), created: false };
      }
      if (error instanceof HoldRefused) throw await this.refusal(error.outcome, request, pools);
      throw error;
    }
    this.count('reserved');
    return { reservation: outcome.reservation!, created: true };
  }

  /**
   * Posts what the delivery actually cost: a charge (promotional credit
   * first, then paid, which may go below zero) that lets go of the hold in
   * the same transaction. Above the reservation it is posted anyway, flagged
   * for finance (over_reservation); zero posts nothing and lets go of the hold.
   */
  async post(caller: string, reservationId: string, actual: bigint, actor: Actor, correlationId: string): Promise<ResolveResult> {
    if (typeof actual !== 'bigint' || actual < 0n || actual > MAX_AMOUNT) {
      throw new AppError('BILLING_AMOUNT_INVALID', 'A posted amount is a whole number of minor units, zero or more', { details: { field: 'amount' } });
    }
    return this.resolveWith(caller, reservationId, async (tx, reservation) => {
      if (actual === 0n) {
        await this.ledger.releaseIn(tx, [holdOf(reservation)]);
        return this.store.resolve(tx, [reservation.id], { status: 'posted', postedAmount: 0n });
      }
      const over = actual > reservation.amount;
      const charged = await this.ledger.chargeIn(tx, {
        postingId: `reservation:${reservation.id}`,
        kind: 'reservation_post',
        organizationId: reservation.organizationId,
        departmentId: reservation.departmentId,
        projectId: reservation.projectId,
        amount: actual,
        actor,
        correlationId,
        description: reservation.description,
        metadata: { reservationId: reservation.id, reserved: reservation.amount.toString(), caller },
        flagged: over,
        release: releaseOf(reservation),
      });
      return this.store.resolve(tx, [reservation.id], {
        status: 'posted',
        postedAmount: actual,
        overReservation: over,
        postingId: charged.posting.id,
      });
    });
  }

  /** Lets go of the hold without charging anything. */
  void(caller: string, reservationId: string): Promise<ResolveResult> {
    return this.resolveWith(caller, reservationId, async (tx, reservation) => {
      await this.ledger.releaseIn(tx, [holdOf(reservation)]);
      return this.store.resolve(tx, [reservation.id], { status: 'voided' });
    });
  }

  /**
   * Expires pending reservations whose time is up, up to `batch` of them in
   * one transaction; returns how many. Reservations another transaction
   * holds are skipped (it resolves them, or the next sweep does), so any
   * number of instances may sweep at once.
   */
  expireDue(batch = 100): Promise<number> {
    return inTransaction(this.pool, async (tx) => {
      const lapsed = await this.store.lockLapsed(tx, batch);
      if (lapsed.length === 0) return 0;
      await this.ledger.releaseIn(
        tx,
        lapsed.map(holdOf),
      );
      const expired = await this.store.resolve(
        tx,
        lapsed.map((reservation) => reservation.id),
        { status: 'expired' },
      );
      this.count('expired', expired.length);
      return expired.length;
    });
  }

  /** Pending reservations now, across every instance. */
  openCount(): Promise<number> {
    return this.store.openCount(this.pool);
  }

  /**
   * Locks the caller's reservation first (before the ledger locks the
   * organization's funds), then: resolved before, the first result as it
   * stands; its time up, expired now (the hold is let go, nothing posted);
   * else `resolve`.
   */
  private async resolveWith(caller: string, reservationId: string, resolve: (tx: Tx, reservation: LockedReservation) => Promise<ReservationRecord[]>): Promise<ResolveResult> {
    const result = await inTransaction(this.pool, async (tx): Promise<ResolveResult & { outcome?: ReservationOutcome }> => {
      const reservation = UUID.test(reservationId) ? await this.store.lock(tx, caller, reservationId) : undefined;
      if (!reservation) {
        throw new AppError('BILLING_RESERVATION_NOT_FOUND', 'No reservation of yours has this id', { details: { reservationId } });
      }
      if (reservation.status !== 'pending') return { reservation: withoutLapsed(reservation), resolved: false };
      if (reservation.lapsed) {
        await this.ledger.releaseIn(tx, [holdOf(reservation)]);
        const [expired] = await this.store.resolve(tx, [reservation.id], { status: 'expired' });
        return { reservation: expired!, resolved: true, outcome: 'expired' };
      }
      const [resolved] = await resolve(tx, reservation);
      return { reservation: resolved!, resolved: true, outcome: resolved!.status === 'voided' ? 'voided' : 'posted' };
    });
    if (result.outcome) this.count(result.outcome);
    return { reservation: result.reservation, resolved: result.resolved };
  }

  /** The refusal for a hold that did not fit, with what is left, read after the rollback. */
  private async refusal(outcome: HoldOutcome, request: ReserveRequest, pools: readonly PoolLimit[]): Promise<AppError> {
    if (!outcome.fundsHeld) {
      const funds = await this.store.available(this.pool, request.organizationId);
      if (!funds) {
        return new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', {
          details: { organizationId: request.organizationId },
        });
      }
      this.count('refused_funds');
      const available = funds.available > 0n ? funds.available : 0n;
      return new AppError(
        'BILLING_INSUFFICIENT_FUNDS',
        `Insufficient funds: ${available} minor units of ${funds.currency} available, ${request.amount} requested`,
        { details: { organizationId: request.organizationId, currency: funds.currency, available: available.toString(), requested: request.amount.toString() } },
      );
    }
    const over = outcome.overLimit[0]!;
    const limit = pools.find((pool) => pool.level === over.level && pool.id === over.id)!.limit!;
    const { left, period } = await this.store.budgetLeft(this.pool, over, limit);
    this.count('refused_budget');
    return new AppError(
      'BILLING_BUDGET_EXCEEDED',
      `The ${over.level} budget for ${period.slice(0, 7)} has ${left} minor units left of ${limit}, ${request.amount} requested`,
      { details: { pool: over, period, limit, available: left.toString(), requested: request.amount.toString() } },
    );
  }

  private count(outcome: ReservationOutcome, by = 1): void {
    if (by > 0) this.outcomes?.inc({ outcome }, by);
  }
}

/** Carries a hold that did not fit out of its transaction, so the transaction rolls back. */
class HoldRefused extends Error {
  constructor(readonly outcome: HoldOutcome) {
    super('reservation hold refused');
  }
}

function checkRequest(request: ReserveRequest): void {
  if (typeof request.amount !== 'bigint' || request.amount <= 0n || request.amount > MAX_AMOUNT) {
    throw new AppError('BILLING_AMOUNT_INVALID', 'A reservation holds a positive whole number of minor units', { details: { field: 'amount' } });
  }
  if (!UUID.test(request.organizationId) || !UUID.test(request.projectId)) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'organizationId and projectId are UUIDs');
  }
  if (request.idempotencyKey.length === 0 || request.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `idempotencyKey is 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  if ((request.description ?? '').length > MAX_DESCRIPTION_LENGTH) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `description is at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
}

/** What makes a retry the same reservation: everything the caller asked for, not who or when. */
function fingerprintOf(request: ReserveRequest): string {
  const canonical = {
    organizationId: request.organizationId,
    projectId: request.projectId,
    amount: request.amount.toString(),
    ttlSeconds: request.ttlSeconds,
    description: request.description ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}

function sameRequest(earlier: ReservationRecord, fingerprint: string): ReservationRecord {
  if (earlier.fingerprint !== fingerprint) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was used for another reservation', {
      details: { idempotencyKey: earlier.idempotencyKey },
    });
  }
  return earlier;
}

/**
 * The organization's policy snapshot, refused when the read model is stale
 * or has none for it: a budget IAM has since lowered must not be enforced
 * at its old value (seed 002), so the caller gets a retryable refusal.
 */
function freshSnapshot(policy: PolicySource, organizationId: string): PolicySnapshot {
  requireFreshPolicy({ ageMs: policy.ageMs() });
  const snapshot = policy.policy(organizationId);
  if (!snapshot) {
    throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { organizationId } });
  }
  return snapshot;
}

function checkTtl(snapshot: PolicySnapshot, target: PolicyTarget, ttlSeconds: number): void {
  const maxSeconds = Number(exactOf(snapshot, MAX_TTL_KEY, effectivePolicy(snapshot, target, MAX_TTL_KEY).value).units);
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxSeconds) {
    throw new AppError('BILLING_RESERVATION_TTL_INVALID', `ttlSeconds must be a whole number from 1 to ${maxSeconds}`, {
      details: { ttlSeconds, min: 1, max: maxSeconds },
    });
  }
}

/**
 * The organization, department and project pools a hold counts in, each
 * with the limit policy sets on it (null where none is set: a department
 * without its own budget spends from the organization's).
 */
function budgetPools(snapshot: PolicySnapshot, target: PolicyTarget, organizationId: string, departmentId: string, projectId: string): PoolLimit[] {
  // Most specific first: a refusal names the narrowest budget that said no.
  const pools: PoolLimit[] = [
    { level: 'project', id: projectId, limit: null },
    { level: 'department', id: departmentId, limit: null },
    { level: 'organization', id: organizationId, limit: null },
  ];
  for (const limit of policyLimits(snapshot, target, BUDGET_KEY)) {
    exactOf(snapshot, BUDGET_KEY, limit.value);
    const pool = pools.find((candidate) => candidate.level === limit.pool.level && candidate.id === limit.pool.id);
    // A project never moves, so policy and billing agree on its department; a limit on another node would go unenforced.
    if (!pool) throw new Error(`policy limits ${limit.pool.level} ${limit.pool.id}, which project ${projectId} does not spend from`);
    pool.limit = String(limit.value);
  }
  return pools;
}

/** A policy value IAM checked when it was written; one that no longer parses is a defect, and refuses rather than guesses. */
function exactOf(snapshot: PolicySnapshot, key: string, value: unknown) {
  const parsed = parsePolicyValue(snapshot.keys[key]!, value);
  if (!parsed.ok) throw new Error(`policy ${key} holds ${String(value)}, not ${parsed.problem}`);
  return parsed.exact;
}

function releaseOf(reservation: ReservationRecord): HoldRelease {
  return { amount: reservation.amount, period: reservation.period, departmentId: reservation.departmentId, projectId: reservation.projectId };
}

/** The reservation's hold as the ledger lets it go. */
function holdOf(reservation: ReservationRecord): { organizationId: string; release: HoldRelease } {
  return { organizationId: reservation.organizationId, release: releaseOf(reservation) };
}

function withoutLapsed({ lapsed: _lapsed, ...reservation }: LockedReservation): ReservationRecord {
  return reservation;
}
