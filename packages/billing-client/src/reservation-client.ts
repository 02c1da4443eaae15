import { z } from 'zod';
import { AppError, ERROR_CODES, type ErrorCode } from '@aifactory/errors';
import type { VerifiedInternalCall } from '@aifactory/service-auth';
import type { ServiceClient } from '@aifactory/subgraph-kit';

/** The scope every call claims: the calling service's identity must hold it. */
export const RESERVE_SCOPE = 'platform:billing:reserve';
const BILLING = 'billing';
const PATHS = {
  reserve: '/api/internal/reservations',
  post: '/api/internal/reservations/post',
  void: '/api/internal/reservations/void',
} as const;

export type ReservationStatus = 'pending' | 'posted' | 'voided' | 'expired';

/** A reservation as billing answers it; amounts in minor units of `currency`. */
export interface Reservation {
  id: string;
  /** `expired` when its time was up before it was posted or voided: nothing was charged. */
  status: ReservationStatus;
  organizationId: string;
  departmentId: string;
  projectId: string;
  currency: string;
  amount: bigint;
  /** The budget month it holds in (`2026-11-01`). */
  period: string;
  idempotencyKey: string;
  description: string | null;
  expiresAt: Date;
  createdAt: Date;
  resolvedAt: Date | null;
  postedAmount: bigint | null;
  /** Posted above the amount reserved (charged anyway, flagged for finance). */
  overReservation: boolean;
  /** The ledger posting of the charge; null unless posted above zero. */
  postingId: string | null;
}

export interface ReserveInput {
  organizationId: string;
  projectId: string;
  /** Minor units of the organization's billing currency, above zero. */
  amount: bigint;
  /** 1 s up to the project's `billing.reservation.max_ttl` (PT24H unless policy says less). */
  ttlSeconds: number;
  /** Yours, for this reservation: a retry with the same key and input returns the first reservation. */
  idempotencyKey: string;
  description?: string;
}

export interface ReservationCallOptions {
  /** The call being served (`ctx.call`): billing records its caller as the party acting. */
  onBehalfOf?: VerifiedInternalCall;
  correlationId?: string;
  /** Default: the ServiceClient's (SERVICE_CALL_TIMEOUT_MS). */
  timeoutMs?: number;
}

const digits = z
  .string()
  .regex(/^-?(0|[1-9][0-9]*)$/)
  .transform((text) => BigInt(text));
const instant = z.iso.datetime({ offset: true }).transform((text) => new Date(text));
const answerSchema = z.object({
  reservation: z.object({
    id: z.string(),
    status: z.enum(['pending', 'posted', 'voided', 'expired']),
    organizationId: z.string(),
    departmentId: z.string(),
    projectId: z.string(),
    currency: z.string(),
    amount: digits,
    period: z.string(),
    idempotencyKey: z.string(),
    description: z.string().nullable(),
    expiresAt: instant,
    createdAt: instant,
    resolvedAt: instant.nullable(),
    postedAmount: digits.nullable(),
    overReservation: z.boolean(),
    postingId: z.string().nullable(),
  }),
});
const refusalSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), correlationId: z.string().optional() }) });

/**
 * A platform service's side of billing's reservations (GPUaaS, App
 * Platform): reserve before delivering, post what the delivery cost, or
 * void. Fails closed: when billing cannot be reached, times out, answers
 * 5xx or anything unreadable, every method throws BILLING_UNAVAILABLE, so
 * the product refuses its own request rather than deliver unpaid. A refusal
 * billing decided (4xx) keeps billing's code and message
 * (BILLING_INSUFFICIENT_FUNDS, BILLING_BUDGET_EXCEEDED, ...).
 */
export class ReservationClient {
  constructor(private readonly services: Pick<ServiceClient, 'request'>) {}

  reserve(input: ReserveInput, options: ReservationCallOptions = {}): Promise<Reservation> {
    return this.send(
      PATHS.reserve,
      {
        organizationId: input.organizationId,
        projectId: input.projectId,
        amount: input.amount.toString(),
        ttlSeconds: input.ttlSeconds,
        idempotencyKey: input.idempotencyKey,
        ...(input.description === undefined ? {} : { description: input.description }),
      },
      options,
    );
  }

  /**
   * Charges what the delivery actually cost and lets the hold go. Resolved
   * before (posted, voided or expired), billing answers that first result:
   * check `status`. Zero lets the hold go with no charge.
   */
  post(reservationId: string, amount: bigint, options: ReservationCallOptions = {}): Promise<Reservation> {
    return this.send(PATHS.post, { reservationId, amount: amount.toString() }, options);
  }

  /** Lets the hold go without charging anything. */
  void(reservationId: string, options: ReservationCallOptions = {}): Promise<Reservation> {
    return this.send(PATHS.void, { reservationId }, options);
  }

  private async send(path: string, body: Record<string, unknown>, options: ReservationCallOptions): Promise<Reservation> {
    let status: number;
    let text: string;
    try {
      const response = await this.services.request(
        BILLING,
        path,
        { method: 'POST', body },
        {
          scopes: [RESERVE_SCOPE],
          ...(options.onBehalfOf === undefined ? {} : { onBehalfOf: options.onBehalfOf }),
          ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        },
      );
      status = response.status;
      // The call's timeout covers the body too: a body that stalls fails here.
      text = await response.text();
    } catch (error) {
      throw unavailable('Billing could not be reached', { path }, error);
    }
    if (status >= 200 && status < 300) {
      const answer = answerSchema.safeParse(parsed(text));
      if (!answer.success) throw unavailable('Billing sent an unreadable answer', { path, status }, answer.error);
      return answer.data.reservation;
    }
    const refusal = refusalSchema.safeParse(parsed(text));
    const code = refusal.success ? refusal.data.error.code : undefined;
    if (status >= 400 && status < 500 && refusal.success && isErrorCode(code)) {
      throw new AppError(code, refusal.data.error.message, {
        details: { service: BILLING, status, ...(refusal.data.error.correlationId ? { correlationId: refusal.data.error.correlationId } : {}) },
      });
    }
    throw unavailable('Billing is unavailable', { path, status, ...(code === undefined ? {} : { code }) });
  }
}

function unavailable(message: string, details: Record<string, unknown>, cause?: unknown): AppError {
  // A timeout may come after billing acted: the same call again (same idempotency key, same reservation) is safe.
  return new AppError('BILLING_UNAVAILABLE', `${message}; retry later`, {
    details: { service: BILLING, ...details },
    ...(cause === undefined ? {} : { cause }),
  });
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: the schema refuses undefined, and the caller answers BILLING_UNAVAILABLE.
    return undefined;
  }
}

function isErrorCode(code: string | undefined): code is ErrorCode {
  return code !== undefined && Object.hasOwn(ERROR_CODES, code);
}
