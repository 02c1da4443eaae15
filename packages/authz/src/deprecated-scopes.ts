import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';

/**
 * The `onDeprecated` callback for Access: a deprecated scope still works, so
 * its uses are counted and logged to show who must move before it is retired.
 */
export function deprecatedScopeReporter(options: { logger: Logger; metrics?: ServiceMetrics }): (scope: string) => void {
  const uses = options.metrics?.counter('aif_authz_deprecated_scope_uses_total', 'Requests that used a deprecated scope, by scope.', ['scope']);
  return (scope) => {
    uses?.inc({ scope });
    options.logger.warn({ scope }, 'deprecated scope used');
  };
}
