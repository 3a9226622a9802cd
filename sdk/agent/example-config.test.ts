import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from './config';

describe('examples/systemd/agent.yaml', () => {
  it('is a valid agent configuration', () => {
    const file = join(import.meta.dirname, '../../examples/systemd/agent.yaml');
    const cfg = parseAgentConfig(readFileSync(file, 'utf8'), file);
    expect(cfg).toMatchObject({ fleet: 'workshop', home: '/var/lib/edgewarden' });
    expect(cfg.brokers).toHaveLength(1);
  });

  it('is the file the systemd unit starts the agent with', () => {
    const unit = readFileSync(join(import.meta.dirname, '../../examples/systemd/edgewarden-agent.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=.*edgewarden agent --config \/etc\/edgewarden\/agent\.yaml$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
  });
});
