import { ConfigError, parseConfig } from '@aifactory/config';
import { nodeAgentConfigSchema } from './config.js';

describe('node agent config', () => {
  it('accepts a complete environment and fills defaults', () => {
    const config = parseConfig(nodeAgentConfigSchema, {
      AGENT_CONTROL_PLANE_URL: 'https://gpuaas.example.com',
      AGENT_SANDBOX_ROOT: '/var/lib/aifactory-agent',
    });
    expect(config).toEqual({
      AGENT_CONTROL_PLANE_URL: 'https://gpuaas.example.com',
      AGENT_SANDBOX_ROOT: '/var/lib/aifactory-agent',
      AGENT_POLL_INTERVAL_MS: 5000,
      LOG_LEVEL: 'info',
    });
  });

  it('names every variable that is missing or bad', () => {
    let caught: unknown;
    try {
      parseConfig(nodeAgentConfigSchema, { AGENT_SANDBOX_ROOT: 'relative/path', AGENT_POLL_INTERVAL_MS: '-1' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as ConfigError).message;
    expect(message).toContain('AGENT_CONTROL_PLANE_URL');
    expect(message).toContain('AGENT_SANDBOX_ROOT: must be an absolute path');
    expect(message).toContain('AGENT_POLL_INTERVAL_MS');
  });
});
