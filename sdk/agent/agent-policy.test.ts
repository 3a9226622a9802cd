import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signPolicyYaml } from '../policy/sign';
import { encodeEnvelope } from '../provenance/dsse';
import { KeySigner, writeKeyPair } from '../provenance/keys';
import { type EmbeddedBroker, startEmbeddedBroker } from '../telemetry/embedded-broker';
import { connectMqtt } from '../telemetry/mqtt-client';
import { MemoryPublisher } from '../testing/memory-publisher';
import { Agent } from './agent';
import { parseAgentConfig } from './config';

const ADD = join(import.meta.dirname, '../engine/fixtures/add.onnx');
const manualTimers = { setTimeout: () => 0, clearTimeout: () => {} };
const policy = (version: number, unlisted: string) =>
  `apiVersion: edgewarden/v1\nkind: Policy\nauthority: owner\nversion: ${version}\nmodels:\n  unlisted: ${unlisted}\n  allow: []\n`;

describe('agent policies from the retained MQTT topic', () => {
  let broker: EmbeddedBroker;
  let home: string;
  let owner: KeySigner;
  beforeAll(async () => {
    broker = await startEmbeddedBroker();
    home = mkdtempSync(join(tmpdir(), 'ew-agent-policy-'));
    await writeKeyPair(join(home, 'keys'), 'device');
    owner = await writeKeyPair(join(home, 'policy', 'authorities'), 'owner');
  });
  afterAll(async () => {
    await broker.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('applies a verified policy, refuses a forged one, and says so in heartbeats', async () => {
    const config = parseAgentConfig(
      `home: ${home}\nfleet: policytest\nmodels:\n  - { name: add, path: ${ADD} }\nbrokers:\n  - { url: "${broker.url}", receipts: false }\n`,
      join(home, 'agent.yaml'),
    );
    const memory = new MemoryPublisher();
    const agent = await Agent.start(config, { timers: manualTimers, publishers: [memory], log: () => {} });
    const authority = await connectMqtt(broker.url, { clientId: 'owner-authority' });
    try {
      // A flag-mode policy that lists no model: the device runs on, NON_COMPLIANT with the reason.
      const applied = new Promise<void>((resolve) => agent.policy.onChange(() => resolve()));
      const signed = encodeEnvelope(await signPolicyYaml(owner, policy(1, 'flag')));
      await authority.publish('ew/v1/policytest/policy/owner', signed, { qos: 1, retain: true });
      await applied;
      await agent.heartbeatNow();
      const first = memory.published.at(-1)!.heartbeat;
      expect(Buffer.from(first.policyDigest ?? []).length).toBe(32);
      expect(first.compliance?.state).toBe('non_compliant');
      expect(first.compliance?.reasons.join(' ')).toMatch(/add/);

      // A policy signed by a key the device does not trust is refused; the previous one stays.
      const refused = new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (agent.policy.refusals.length > 0) {
            clearInterval(t);
            resolve();
          }
        }, 10);
      });
      const forged = encodeEnvelope(await signPolicyYaml(KeySigner.generate(), policy(2, 'refuse')));
      await authority.publish('ew/v1/policytest/policy/owner', forged, { qos: 1, retain: true });
      await refused;
      await agent.heartbeatNow();
      const second = memory.published.at(-1)!.heartbeat;
      expect(second.policyRefusals?.join(' ')).toMatch(/EW_POLICY_/);
      expect(Buffer.from(second.policyDigest!).equals(Buffer.from(first.policyDigest!))).toBe(true);
    } finally {
      await authority.publish('ew/v1/policytest/policy/owner', new Uint8Array(0), { qos: 1, retain: true });
      await authority.end();
      await agent.stop();
    }
  });
});
