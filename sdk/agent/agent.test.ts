import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../provenance/checkpoint';
import { type KeySigner, writeKeyPair } from '../provenance/keys';
import { verifyConsistency } from '../provenance/merkle';
import { type EmbeddedBroker, startEmbeddedBroker } from '../telemetry/embedded-broker';
import { decodeSignedHeartbeat } from '../telemetry/heartbeat';
import { decodeSignedLifecycle } from '../telemetry/lifecycle';
import { connectMqtt, type MqttClient } from '../telemetry/mqtt-client';
import { MemoryPublisher } from '../testing/memory-publisher';
import { Agent } from './agent';
import { parseAgentConfig } from './config';

const fixtures = join(import.meta.dirname, '../engine/fixtures');
const piRoot = join(import.meta.dirname, '../../devices/boards/fixtures/pi4');
// Timers that never fire on their own: the test drives heartbeats with heartbeatNow().
const manualTimers = { setTimeout: () => 0, clearTimeout: () => {} };

describe('agent', () => {
  let broker: EmbeddedBroker;
  let home: string;
  let signer: KeySigner;
  let sub: MqttClient;
  const seen: { topic: string; payload: Uint8Array }[] = [];

  beforeAll(async () => {
    broker = await startEmbeddedBroker();
    home = mkdtempSync(join(tmpdir(), 'ew-agent-'));
    signer = await writeKeyPair(join(home, 'keys'), 'device');
    sub = await connectMqtt(broker.url, { clientId: 'agent-test-sub' });
    sub.on('message', (m) => seen.push({ topic: m.topic, payload: m.payload }));
    await sub.subscribe('ew/v1/agenttest/#', { qos: 1 });
  });

  afterAll(async () => {
    await sub.end();
    await broker.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('loads its models, publishes signed heartbeats with consistent checkpoints, and dies cleanly on stop', async () => {
    const config = parseAgentConfig(
      `home: ${home}\nfleet: agenttest\nprovenance: { checkpointMs: 20 }\nmodels:\n  - { name: add, path: ${join(fixtures, 'add.onnx')} }\n` +
        `brokers:\n  - { url: "${broker.url}", receipts: false }\n`,
      join(home, 'agent.yaml'),
    );
    const memory = new MemoryPublisher({ signer });
    const agent = await Agent.start(config, {
      timers: manualTimers,
      boardRoot: piRoot,
      publishers: [memory],
      log: () => {},
    });
    const model = agent.warden.models[0]!;
    const x = { dtype: 'float32' as const, dims: [1, 3], data: new Float32Array([1, 2, 3]) };
    const feeds = Object.fromEntries(model.inputs.map((m) => [m.name, x]));
    for (let i = 0; i < 3; i++) await (await model.infer(feeds)).provenance;
    await agent.heartbeatNow();
    for (let i = 0; i < 2; i++) await (await model.infer(feeds)).provenance;
    await agent.heartbeatNow();
    await agent.stop();

    const [first, second] = memory.published.map((p) => p.heartbeat);
    expect(first?.board?.model).toBe('Raspberry Pi 4 Model B Rev 1.4');
    expect(first?.models?.[0]).toMatchObject({ name: 'add', inferences: 3 });
    expect(first?.compliance?.state).toBe('compliant');
    expect(second?.models?.[0]?.inferences).toBe(5);
    // The second heartbeat proves its checkpoint extends the first one's.
    const c1 = decodeCheckpoint(first!.checkpoint!.payload);
    const c2 = decodeCheckpoint(second!.checkpoint!.payload);
    expect([c1.treeSize, c2.treeSize]).toEqual([3, 5]);
    expect(second?.previousTreeSize).toBe(3);
    expect(verifyConsistency(3, 5, c1.rootHash, c2.rootHash, second!.consistencyProof!)).toBe(true);

    // Over MQTT: birth, two signed heartbeats, and a clean death with the birth's bd_seq.
    const deadline = Date.now() + 5000;
    while (!seen.some((m) => m.topic.endsWith('/death')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const beats = seen.filter((m) => m.topic.endsWith('/hb')).map((m) => decodeSignedHeartbeat(m.payload).heartbeat);
    expect(beats.map((b) => b.seq)).toEqual([1, 2]);
    const birth = decodeSignedLifecycle(seen.find((m) => m.topic.endsWith('/birth'))!.payload).lifecycle;
    const death = decodeSignedLifecycle(seen.find((m) => m.topic.endsWith('/death'))!.payload).lifecycle;
    expect(death.bdSeq).toBe(birth.bdSeq);
    expect(death.clean).toBe(true);
  });
});
