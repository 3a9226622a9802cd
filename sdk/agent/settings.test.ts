import { describe, expect, it } from 'vitest';
import { type EffectivePolicy, EMPTY_EFFECTIVE_POLICY } from '../policy/compose';
import { parseAgentConfig } from './config';
import { applyEffectivePolicy } from './settings';

const config = parseAgentConfig(
  'fleet: f\nheartbeat: { intervalSeconds: 30 }\nbrokers:\n  - { url: "mqtt://a:1883", share: full }\n  - { url: "mqtt://b:1883", share: none }\n',
  '/etc/ew/agent.yaml',
);
const set = <T>(value: T) => ({ value, setBy: ['fleet'] });

describe('applyEffectivePolicy', () => {
  it('keeps the owner configuration when no policy is installed', () => {
    const out = applyEffectivePolicy(config, EMPTY_EFFECTIVE_POLICY);
    expect(out).toMatchObject({ provenance: config.provenance, heartbeat: { intervalSeconds: 30 }, salted: false });
    expect(out.brokers.map((b) => b.share)).toEqual(['full', 'none']);
  });

  it('makes the configuration no looser than the policy', () => {
    const effective: EffectivePolicy = {
      ...EMPTY_EFFECTIVE_POLICY,
      provenance: { mode: set('per-output'), checkpointEvery: set(50), checkpointMs: set(10_000), salted: set(true) },
      audit: { durability: set('always') },
      telemetry: {
        heartbeatSeconds: set(10),
        brokers: [
          { url: 'mqtt://a:1883', share: set('summary') },
          { url: 'mqtt://b:1883', share: set('full') },
        ],
      },
    };
    const out = applyEffectivePolicy(config, effective);
    expect(out.provenance).toEqual({
      mode: 'per-output',
      durability: 'always',
      checkpointEvery: 50,
      checkpointMs: 5000,
    });
    expect(out.heartbeat.intervalSeconds).toBe(10);
    // A policy can only reduce what a broker sees, never widen it.
    expect(out.brokers.map((b) => b.share)).toEqual(['summary', 'none']);
    expect(out.salted).toBe(true);
  });

  it("retains the audit log for the longer of the owner's and the policy's periods, and keeps everything without either", () => {
    const own = (days?: number) =>
      parseAgentConfig(`fleet: f\n${days ? `provenance: { retainDays: ${days} }\n` : ''}`, '/etc/ew/agent.yaml');
    const policy = (days?: number): EffectivePolicy => ({
      ...EMPTY_EFFECTIVE_POLICY,
      audit: days === undefined ? {} : { retainDays: set(days) },
    });
    expect(applyEffectivePolicy(own(), policy()).provenance.retainDays).toBeUndefined();
    expect(applyEffectivePolicy(own(30), policy()).provenance.retainDays).toBe(30);
    expect(applyEffectivePolicy(own(30), policy(365)).provenance.retainDays).toBe(365);
    expect(applyEffectivePolicy(own(400), policy(365)).provenance.retainDays).toBe(400);
    expect(applyEffectivePolicy(own(), policy(90)).provenance.retainDays).toBe(90);
    expect(applyEffectivePolicy(own(), policy(0)).provenance.retainDays).toBeUndefined();
  });
});
