import { z } from 'zod';
import type { Actor } from '@aifactory/contracts';
import { AppError, parseInput } from '@aifactory/errors';
import { isJsonContentType, parseJsonBody, readBody, sendJson } from '@aifactory/http';
import type { SubgraphHttpContext, SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { ReservationRecord } from '../data/reservation-store.js';
import { MAX_DESCRIPTION_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, type Reservations } from '../domain/reservations.js';
import { formatAmount, parseAmount } from '../domain/money.js';

/** The scope a platform service's identity must hold, and claim in its token, to reserve, post and void. */
export const RESERVE_SCOPE = 'platform:billing:reserve';
const BODY_LIMIT_BYTES = 16 * 1024;

const reserveSchema = z.object({
  organizationId: z.uuid(),
  projectId: z.uuid(),
  /** Minor units as a string of digits (JSON numbers lose precision past 2^53): parseAmount judges it, with billing's own code. */
  amount: z.unknown(),
  ttlSeconds: z.number().int(),
  idempotencyKey: z.string().min(1).max(MAX_IDEMPOTENCY_KEY_LENGTH),
  description: z.string().max(MAX_DESCRIPTION_LENGTH).optional(),
});
const postSchema = z.object({ reservationId: z.uuid(), amount: z.unknown() });
const voidSchema = z.object({ reservationId: z.uuid() });

interface Caller {
  service: string;
  actor: Actor;
}

/**
 * billing's internal reservation API for platform services (GPUaaS, App
 * Platform): reserve before delivering, then post what it cost or void.
 * Service identity tokens only, with `platform:billing:reserve`; each
 * service sees only its own reservations. Amounts are strings of minor units.
 */
export function reservationRoutes(reservations: Reservations): SubgraphHttpRoute[] {
  return [
    {
      method: 'POST',
      path: '/api/internal/reservations',
      access: 'internal',
      handle: async (ctx) => {
        const caller = requireReserver(ctx);
        const body = parseInput(reserveSchema, await jsonBody(ctx));
        const { reservation, created } = await reservations.reserve(
          {
            caller: caller.service,
            organizationId: body.organizationId,
            projectId: body.projectId,
            amount: parseAmount(body.amount, 'amount'),
            ttlSeconds: body.ttlSeconds,
            idempotencyKey: body.idempotencyKey,
            description: body.description ?? null,
            actor: caller.actor,
            correlationId: ctx.correlationId,
          },
          ctx.accessModel,
        );
        sendJson(ctx.res, created ? 201 : 200, { reservation: reservationJson(reservation) });
      },
    },
    {
      method: 'POST',
      path: '/api/internal/reservations/post',
      access: 'internal',
      handle: async (ctx) => {
        const caller = requireReserver(ctx);
        const body = parseInput(postSchema, await jsonBody(ctx));
        const amount = parseAmount(body.amount, 'amount', { allowZero: true });
        const { reservation } = await reservations.post(caller.service, body.reservationId, amount, caller.actor, ctx.correlationId);
        sendJson(ctx.res, 200, { reservation: reservationJson(reservation) });
      },
    },
    {
      method: 'POST',
      path: '/api/internal/reservations/void',
      access: 'internal',
      handle: async (ctx) => {
        const caller = requireReserver(ctx);
        const body = parseInput(voidSchema, await jsonBody(ctx));
        const { reservation } = await reservations.void(caller.service, body.reservationId);
        sendJson(ctx.res, 200, { reservation: reservationJson(reservation) });
      },
    },
  ];
}

/**
 * Only a platform service's own token (never the gateway's, whatever
 * principal it carries) that claims the reserve scope; its identity held
 * the scope, or the token would not have verified. The refusal names the
 * service and what it lacked, and the request's log line carries it.
 */
function requireReserver(ctx: SubgraphHttpContext): Caller {
  const call = ctx.call;
  if (!call || call.credential !== 'service_identity' || call.principal.type !== 'service') {
    throw new AppError('AUTH_FORBIDDEN', 'Only a platform service reserves funds, with its own service identity');
  }
  const { principal } = call;
  if (!(principal.scopes ?? []).includes(RESERVE_SCOPE)) {
    throw new AppError('AUTH_FORBIDDEN', `The ${principal.subject} service does not hold ${RESERVE_SCOPE}`, {
      details: { service: principal.subject, scope: RESERVE_SCOPE },
    });
  }
  const party = principal.onBehalfOf;
  return { service: principal.subject, actor: party ? { type: party.type, id: party.subject } : { type: 'service', id: principal.subject } };
}

async function jsonBody(ctx: SubgraphHttpContext): Promise<unknown> {
  if (!isJsonContentType(ctx.req.headers['content-type'])) {
    throw new AppError('BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE', 'Send the request as application/json');
  }
  return parseJsonBody(await readBody(ctx.req, BODY_LIMIT_BYTES));
}

/** A reservation as the API answers it: amounts as strings, times as ISO-8601. */
function reservationJson(reservation: ReservationRecord) {
  return {
    id: reservation.id,
    status: reservation.status,
    organizationId: reservation.organizationId,
    departmentId: reservation.departmentId,
    projectId: reservation.projectId,
    currency: reservation.currency,
    amount: formatAmount(reservation.amount),
    period: reservation.period,
    idempotencyKey: reservation.idempotencyKey,
    description: reservation.description,
    expiresAt: reservation.expiresAt.toISOString(),
    createdAt: reservation.createdAt.toISOString(),
    resolvedAt: reservation.resolvedAt?.toISOString() ?? null,
    postedAmount: reservation.postedAmount === null ? null : formatAmount(reservation.postedAmount),
    overReservation: reservation.overReservation,
    postingId: reservation.postingId,
  };
}
