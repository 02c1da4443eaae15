import type { Tx } from './transactions.js';

export const SERVICE_STATUSES = ['operational', 'degraded', 'outage', 'maintenance'] as const;
export type ServiceStatusValue = (typeof SERVICE_STATUSES)[number];

/** A service's status row; version 0 is the implied starting point, before any change was announced. */
export interface ServiceStatusRecord {
  service: string;
  status: ServiceStatusValue;
  reason: string | null;
  version: number;
  changedAt: Date;
}

interface ServiceStatusRow {
  service: string;
  status: ServiceStatusValue;
  reason: string | null;
  version: number;
  changed_at: Date;
}

const recordOf = (row: ServiceStatusRow): ServiceStatusRecord => ({
  service: row.service,
  status: row.status,
  reason: row.reason,
  version: row.version,
  changedAt: row.changed_at,
});

export class ServiceStatusStore {
  /** The service's row, locked for the rest of the transaction; created as operational (version 0) the first time. */
  async lock(tx: Tx, service: string): Promise<ServiceStatusRecord> {
    await tx.query(
      `INSERT INTO service_status (service, status, reason, version) VALUES ($1, 'operational', NULL, 0)
       ON CONFLICT (service) DO NOTHING`,
      [service],
    );
    const { rows } = await tx.query<ServiceStatusRow>(
      'SELECT service, status, reason, version, changed_at FROM service_status WHERE service = $1 FOR UPDATE',
      [service],
    );
    return recordOf(rows[0]!);
  }

  /** Writes the next status on the locked row: version + 1, which its event carries as the aggregate version. */
  async change(tx: Tx, service: string, next: { status: ServiceStatusValue; reason: string | null }): Promise<ServiceStatusRecord> {
    const { rows } = await tx.query<ServiceStatusRow>(
      `UPDATE service_status SET status = $2, reason = $3, version = version + 1, changed_at = CURRENT_TIMESTAMP
       WHERE service = $1
       RETURNING service, status, reason, version, changed_at`,
      [service, next.status, next.reason],
    );
    return recordOf(rows[0]!);
  }
}
