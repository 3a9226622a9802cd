import { describe, expect, it } from 'vitest';
import { LatencyHistogram, ModelCounters } from './stats';

describe('LatencyHistogram', () => {
  it('gives percentiles within its 4% bucket width', () => {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 1000; us++) h.record(us);
    expect(h.count).toBe(1000);
    expect(h.quantile(0.5)).toBeGreaterThanOrEqual(500);
    expect(h.quantile(0.5)).toBeLessThanOrEqual(520);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(990);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(1030);
  });

  it('is 0 when empty and clamps huge and tiny values', () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.5)).toBe(0);
    h.record(0);
    h.record(1e12);
    expect(h.quantile(0.01)).toBe(1);
    expect(h.quantile(1)).toBeGreaterThan(100e6);
  });
});

describe('ModelCounters', () => {
  it('snapshots counts and percentiles', () => {
    const c = new ModelCounters('m', new Uint8Array([1]), 'cpu');
    c.inferences = 3;
    c.blocked = 1;
    c.latency.record(100);
    expect(c.snapshot()).toMatchObject({ name: 'm', inferences: 3, blocked: 1, errors: 0, executionProvider: 'cpu' });
    expect(c.snapshot().p50Us).toBeGreaterThanOrEqual(100);
  });
});
