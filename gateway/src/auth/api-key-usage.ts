import { randomUUID } from 'node:crypto';
import type { Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { Logger } from '@aifactory/logging';
import type { InternalTokenSigner } from '@aifactory/service-auth';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import type { ApiKeyUse } from './api-keys.js';
import { GATEWAY_SERVICE_PRINCIPAL } from './iam-sign-in.js';

/** One line of `POST /api/internal/api-keys/usage` (plan-keys.md, iam internal route for the gateway). */
export interface ApiKeyUsageReport {
  keyId: string;
  usedAt: string;
  rehash?: { pepperVersion: number; hash: string };
}

export type SendApiKeyUsage = (uses: ApiKeyUsageReport[]) => Promise<void>;

/** iam takes at most this many uses per call. */
export const USAGE_BATCH_LIMIT = 500;
/** Issue 15: last use is written at most once a minute per key, not per request. */
const REPORT_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 60_000;

export interface ApiKeyUsageReporterOptions {
  send: SendApiKeyUsage;
  clock: Clock;
  logger: Logger;
  /** How often the batch of waiting reports is sent. */
  flushEveryMs: number;
  reportEveryMs?: number;
  batchLimit?: number;
  metrics?: ServiceMetrics;
}

/**
 * Tells iam when keys were last used, and hands it re-hashes (issue 15,
 * Secrets custody: "a key is re-hashed with the new pepper when it is next
 * used"). A key is reported at most once a minute by this instance; reports
 * wait in memory, one per key, and go out in batches. A batch iam did not
 * take goes back in the queue and is tried again after a growing pause; the
 * queue holds one line per key, so an absent iam cannot make it grow beyond
 * the keys in use. A re-hash is sent at once, since until iam stores it the
 * old pepper version cannot be retired.
 */
export class ApiKeyUsageReporter {
  private readonly reportEveryMs: number;
  private readonly batchLimit: number;
  private readonly lastReported = new Map<string, number>();
  private readonly lastRehash = new Map<string, number>();
  private readonly pending = new Map<string, ApiKeyUsageReport>();
  private flushing: Promise<void> | undefined;
  private failuresInARow = 0;
  private nextAttemptMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly reports: Counter<'outcome'> | undefined;

  constructor(private readonly options: ApiKeyUsageReporterOptions) {
    this.reportEveryMs = options.reportEveryMs ?? REPORT_EVERY_MS;
    this.batchLimit = options.batchLimit ?? USAGE_BATCH_LIMIT;
    this.reports = options.metrics?.counter('aif_api_key_usage_reports_total', 'Key last-use lines sent to iam, by outcome (sent or failed)', ['outcome']);
    options.metrics?.gauge('aif_api_key_usage_pending', 'Key last-use lines waiting to be sent to iam', [], (gauge) => gauge.set(this.pending.size));
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.forgetOld();
      void this.flush();
    }, this.options.flushEveryMs);
    this.timer.unref();
  }

  /** Lines waiting to be sent (tests, metrics). */
  get waiting(): number {
    return this.pending.size;
  }

  /** One accepted request; cheap when the key was reported less than a minute ago. */
  record(use: ApiKeyUse): void {
    if (this.closed) return;
    const { keyId } = use.entry;
    const lastRehash = this.lastRehash.get(keyId);
    const rehashNow = use.rehash !== undefined && (lastRehash === undefined || use.atMs - lastRehash >= this.reportEveryMs);
    const last = this.lastReported.get(keyId);
    if (!rehashNow && last !== undefined && use.atMs - last < this.reportEveryMs) return;
    this.lastReported.set(keyId, use.atMs);
    const report: ApiKeyUsageReport = { keyId, usedAt: new Date(use.atMs).toISOString() };
    if (rehashNow && use.rehash) {
      report.rehash = use.rehash();
      this.lastRehash.set(keyId, use.atMs);
    }
    this.queue(report);
    if (report.rehash !== undefined) void this.flush();
  }

  /** Sends what waits, unless iam failed a moment ago; resolves when this round is over, never rejects. */
  flush(): Promise<void> {
    if (this.options.clock.nowMs() < this.nextAttemptMs) return this.flushing ?? Promise.resolve();
    this.flushing ??= this.sendAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stops the timer and makes one last attempt, whatever the pause. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.flushing;
    this.nextAttemptMs = 0;
    await this.flush();
    if (this.pending.size > 0) this.options.logger.warn({ lines: this.pending.size }, 'API key last-use reports not delivered at shutdown');
  }

  private async sendAll(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending.values()].slice(0, this.batchLimit);
      for (const report of batch) this.pending.delete(report.keyId);
      try {
        await this.options.send(batch);
      } catch (error) {
        for (const report of batch) this.queue(report);
        this.failuresInARow += 1;
        const pauseMs = Math.min(MAX_BACKOFF_MS, this.options.flushEveryMs * 2 ** (this.failuresInARow - 1));
        this.nextAttemptMs = this.options.clock.nowMs() + pauseMs;
        this.reports?.inc({ outcome: 'failed' }, batch.length);
        this.options.logger.warn({ err: error, lines: batch.length, retryInMs: pauseMs }, 'could not report API key use to iam; will retry');
        return;
      }
      this.failuresInARow = 0;
      this.nextAttemptMs = 0;
      this.reports?.inc({ outcome: 'sent' }, batch.length);
    }
  }

  /** One line per key: the latest use, and the re-hash to the highest pepper version either line carries. */
  private queue(report: ApiKeyUsageReport): void {
    const waiting = this.pending.get(report.keyId);
    if (waiting === undefined) {
      this.pending.set(report.keyId, report);
      return;
    }
    const usedAt = waiting.usedAt > report.usedAt ? waiting.usedAt : report.usedAt;
    const rehash = (waiting.rehash?.pepperVersion ?? 0) >= (report.rehash?.pepperVersion ?? 0) ? waiting.rehash : report.rehash;
    this.pending.set(report.keyId, { keyId: report.keyId, usedAt, ...(rehash !== undefined ? { rehash } : {}) });
  }

  /** A key not reported for a minute will be reported at its next use anyway: no need to remember it. */
  private forgetOld(): void {
    const nowMs = this.options.clock.nowMs();
    for (const [keyId, atMs] of this.lastReported) if (nowMs - atMs >= this.reportEveryMs) this.lastReported.delete(keyId);
    for (const [keyId, atMs] of this.lastRehash) if (nowMs - atMs >= this.reportEveryMs) this.lastRehash.delete(keyId);
  }
}

export interface IamApiKeyUsageOptions {
  /** iam's origin; undefined while the supergraph names no iam subgraph. */
  iamBaseUrl(): string | undefined;
  signer: InternalTokenSigner;
  timeoutMs: number;
}

/** `POST /api/internal/api-keys/usage` on iam, as the gateway service (iam takes it from nobody else). */
export function iamApiKeyUsage(options: IamApiKeyUsageOptions): SendApiKeyUsage {
  return async (uses) => {
    const base = options.iamBaseUrl();
    if (base === undefined) throw new AppError('IAM_UNAVAILABLE', 'No iam subgraph to report key use to');
    const correlationId = randomUUID();
    const token = await options.signer.mint({ audience: 'iam', principal: GATEWAY_SERVICE_PRINCIPAL, correlationId });
    const response = await fetch(new URL('/api/internal/api-keys/usage', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, [CORRELATION_HEADER]: correlationId },
      body: JSON.stringify({ uses }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const text = await response.text().catch(() => '');
    if (!response.ok) throw new AppError('IAM_UNAVAILABLE', 'iam refused the key usage report', { details: { status: response.status, body: text.slice(0, 500) } });
  };
}
