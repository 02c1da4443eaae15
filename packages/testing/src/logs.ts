import { Writable } from 'node:stream';

export interface LogLine {
  level: string;
  service: string;
  correlationId: string;
  msg: string;
  [key: string]: unknown;
}

export interface CapturedLogs {
  destination: Writable;
  /** Every raw line written so far, exactly as a log shipper would see it. */
  raw(): string[];
  lines(): LogLine[];
}

/** A pino destination that keeps what is written, for assertions on log lines. */
export function captureLogs(): CapturedLogs {
  const raw: string[] = [];
  let partial = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      raw.push(...parts.filter((line) => line.length > 0));
      callback();
    },
  });
  return {
    destination,
    raw: () => [...raw],
    lines: () => raw.map((line) => JSON.parse(line) as LogLine),
  };
}
