import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from './config';

const good = `home: ./state
fleet: workshop
models:
  - name: vad
    path: ./models/silero_vad.onnx
heartbeat:
  intervalSeconds: 10
brokers:
  - url: mqtts://fleet.example:8883
    share: full
    receipts: true
    ca: ./ca.pem
  - url: mqtt://community.example:1883
    share: summary
link:
  match: { vendorId: "2e8a", productId: "000a" }
  baudRate: 921600
`;

describe('agent config', () => {
  it('accepts the documented example and resolves paths from the file', () => {
    const c = parseAgentConfig(good, '/etc/edgewarden/agent.yaml');
    expect(c.home).toBe('/etc/edgewarden/state');
    expect(c.models[0]?.path).toBe('/etc/edgewarden/models/silero_vad.onnx');
    expect(c.brokers[0]).toMatchObject({ ca: '/etc/edgewarden/ca.pem', protocolVersion: 4 });
    expect(c.outbox.maxEntries).toBe(10000);
    expect(c.brokers[1]).toMatchObject({ share: 'summary', receipts: true });
    expect(c.provenance).toMatchObject({ mode: 'batched', durability: 'group' });
    expect(c.link?.match).toEqual({ vendorId: '2e8a', productId: '000a' });
  });

  it.each([
    ['a bad share level', good.replace('share: summary', 'share: everything'), /agent\.yaml:14:5: brokers\[1\]\.share/],
    ['an unknown key', `${good}colour: blue\n`, /agent\.yaml:18:1: colour: Unrecognized key/],
    ['a bad fleet name', good.replace('fleet: workshop', 'fleet: "my fleet"'), /agent\.yaml:2:1: fleet: /],
    [
      'a negative interval',
      good.replace('intervalSeconds: 10', 'intervalSeconds: -1'),
      /agent\.yaml:7:3: heartbeat\.intervalSeconds/,
    ],
    [
      'port and match together',
      good.replace('  baudRate', '  port: /dev/ttyACM0\n  baudRate'),
      /agent\.yaml:\d+:\d+: link: give either port or match/,
    ],
  ])('rejects %s with the key and line', (_what, text, message) => {
    expect(() => parseAgentConfig(text, 'agent.yaml')).toThrow(
      expect.objectContaining({ code: 'EW_AGENT_CONFIG', message: expect.stringMatching(message) }),
    );
  });
});
