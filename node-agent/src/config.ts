import { env, z } from '@aifactory/config';

/**
 * The node agent's settings. The agent itself (enrollment, the mTLS task
 * channel, GPU discovery) is built by the node-agent issue; this package
 * holds what it will start from.
 */
export const nodeAgentConfigSchema = z.object({
  AGENT_CONTROL_PLANE_URL: env.url(),
  /** Every file the agent's handlers touch stays under this directory. */
  AGENT_SANDBOX_ROOT: z.string().startsWith('/', 'must be an absolute path'),
  AGENT_POLL_INTERVAL_MS: env.positiveInt(5_000),
  LOG_LEVEL: env.logLevel(),
});

export type NodeAgentConfig = z.infer<typeof nodeAgentConfigSchema>;
