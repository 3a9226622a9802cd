import { describe, expect, it } from 'vitest';
import { evaluateCompliance, normalizeDigest } from './compliance';
import { parseHostPort } from './http';
import { Metrics } from './metrics';
import type { DeviceRecord, HeartbeatSummary } from './store';

const hb = (over: Partial<HeartbeatSummary> = {}): HeartbeatSummary => ({
  timeMs: 1,
  sdkVersion: '0.1.0',
  bootId: '',
  models: [
    {
      name: 'vad',
      digest: `sha256:${'aa'.repeat(32)}`,
      inferences: 1,
      blocked: 0,
      errors: 0,
      p50Us: 1,
      p99Us: 1,
      executionProvider: 'cpu',
    },
  ],
  policyDigest: '',
  compliance: { state: 'compliant', reasons: [] },
  outboxDepth: 0,
  dropped: 0,
  historical: false,
  share: 'full',
  policyRefusals: [],
  auditAlerts: [],
  ...over,
});

const device = (over: Partial<DeviceRecord> = {}): DeviceRecord => ({
  id: 'd',
  fleet: 'f',
  keyid: null,
  publicKey: null,
  status: 'approved',
  firstSeenMs: null,
  bdSeq: 1,
  bornMs: null,
  birthTimeMs: null,
  bootId: null,
  dead: false,
  deathClean: null,
  diedMs: null,
  lastSeenMs: 1,
  lastSeq: 1,
  lastBdSeq: 1,
  lastHeartbeat: hb(),
  storedSeq: 1,
  historyRewritten: false,
  checkpointSize: null,
  checkpointRoot: null,
  ...over,
});

describe('evaluateCompliance', () => {
  it('is compliant when the device says so and runs allowed models', () => {
    expect(evaluateCompliance(device(), { allowedModels: [`SHA256:${'AA'.repeat(32)}`] })).toEqual({
      state: 'compliant',
      reasons: [],
    });
  });

  it('takes the worst of every source, with reasons', () => {
    const v = evaluateCompliance(
      device({
        historyRewritten: true,
        lastHeartbeat: hb({
          compliance: { state: 'degraded', reasons: ['hot'] },
          dropped: 3,
          auditAlerts: ['crc at 7'],
        }),
      }),
      { allowedModels: ['bb'] },
    );
    expect(v.state).toBe('non_compliant');
    expect(v.reasons.join('\n')).toMatch(/history rewritten/);
    expect(v.reasons.join('\n')).toMatch(/not allowed/);
    expect(v.reasons.join('\n')).toMatch(/crc at 7/);
    expect(v.reasons.join('\n')).toMatch(/3 heartbeats dropped/);
  });

  it('is unknown for pending devices, devices without heartbeats, and devices that share nothing', () => {
    expect(evaluateCompliance(device({ status: 'pending' })).state).toBe('unknown');
    expect(evaluateCompliance(device({ lastHeartbeat: null })).state).toBe('unknown');
    expect(evaluateCompliance(device({ lastHeartbeat: hb({ share: 'none', models: [] }) })).state).toBe('unknown');
    expect(evaluateCompliance(device({ lastHeartbeat: hb({ policyRefusals: ['EW_POLICY_EXPIRED'] }) })).state).toBe(
      'degraded',
    );
  });

  it('normalises digests', () => {
    expect(normalizeDigest('AB')).toBe('sha256:ab');
    expect(normalizeDigest('sha256:cd')).toBe('sha256:cd');
  });
});

describe('Metrics and options', () => {
  it('renders Prometheus text with escaped labels and declared zero counters', () => {
    const m = new Metrics();
    m.counter('x_total', 'X.');
    m.counter('y_total', 'Y.');
    m.inc('y_total', { code: 'a"b' }, 2);
    m.gauge('g', 'G.', () => 3);
    const t = m.text();
    expect(t).toContain('# TYPE x_total counter\nx_total 0');
    expect(t).toContain('y_total{code="a\\"b"} 2');
    expect(t).toContain('g 3');
    expect(m.byLabel('y_total', 'code')).toEqual({ 'a"b': 2 });
  });

  it('parses HOST:PORT', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseHostPort(':0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHostPort('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => parseHostPort('x:99999')).toThrow(expect.objectContaining({ code: 'EW_FLEET_OPTIONS' }));
  });
});
