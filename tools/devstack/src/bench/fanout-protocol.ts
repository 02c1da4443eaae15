/** What the fan-out benchmark tells its subscriber process (fanout-subscribers-main.ts) over IPC. */
export interface FanoutPlan {
  /** The gateway's graphql-ws endpoint. */
  wsUrl: string;
  /** A platform_admin Pomerium assertion, sent on every upgrade request. */
  assertion: string;
  organizationId: string;
  subscribers: number;
  natsUrl: string;
  /** The prefixed organization.updated subject the gateway's feed reads. */
  subject: string;
}

export type FanoutCommand =
  | { kind: 'plan'; plan: FanoutPlan }
  /** Subscribe every client with `query`, then wait for `publish`. */
  | { kind: 'subscribe'; round: string; query: string; expectAccount: boolean; events: number; intervalMs: number; settleMs: number }
  | { kind: 'publish' }
  | { kind: 'exit' };

/** One round's raw timings, all from the subscriber process's performance.now(). */
export interface RoundReceipts {
  round: string;
  publishedAt: number[];
  /** [subscriber][event]: receipt time, or -1 when it never came. */
  receivedAt: number[][];
  duplicates: number;
  /** Results for an event this round did not publish (a seed event, say). */
  foreign: number;
  errors: Record<string, number>;
  /** Clients whose connection had closed by the end of the round, over the whole run. */
  closedSoFar: number;
}

export type FanoutReply =
  | { kind: 'ready' }
  | { kind: 'connected'; connected: number; failed: number; closeReasons: Record<string, number> }
  | { kind: 'subscribed'; round: string }
  /** The untimed first event has reached `received` subscribers; the timed ones follow. */
  | { kind: 'warmed-up'; received: number }
  | { kind: 'round'; receipts: RoundReceipts };
