import type { Logger } from '@aifactory/logging';

export interface PeriodicTask {
  /** Stops the timer and waits for a round in flight to finish. */
  stop(): Promise<void>;
}

/** A periodic task that can also be told to run now. */
export interface WakeablePeriodicTask extends PeriodicTask {
  /** Runs a round now rather than at the next tick; during a round, another right after it. */
  wake(): void;
}

/**
 * Runs `round` at once (or after `firstAfterMs`) and then `everyMs` after
 * each round ends, or sooner when woken, so rounds never overlap. A failed
 * round is logged and the next one runs on time: background work must
 * outlive a database blip.
 */
export function startPeriodicTask(options: { name: string; everyMs: number; firstAfterMs?: number; logger: Logger; round: () => Promise<void> }): WakeablePeriodicTask {
  const { name, everyMs, logger, round } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = () => {
    again = false;
    running = round()
      .catch((error: unknown) => logger.error({ err: error, task: name }, `${name} failed; it runs again in ${everyMs} ms`))
      .finally(() => {
        running = undefined;
        if (stopped) return;
        if (again) {
          run();
          return;
        }
        timer = setTimeout(run, everyMs);
        // A server keeps the process alive; this timer alone never should.
        timer.unref();
      });
  };
  if (options.firstAfterMs === undefined) {
    run();
  } else {
    timer = setTimeout(run, options.firstAfterMs);
    timer.unref();
  }
  return {
    wake: () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      clearTimeout(timer);
      run();
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
