import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EffectivePolicy } from '../policy/compose';
import type { AgentConfig } from './config';

const SHARE_RANK = { none: 0, summary: 1, full: 2 } as const;
const DURABILITY_RANK = { none: 0, group: 1, always: 2 } as const;

/** The agent configuration after the effective policy: the device owner's config, made no looser than policy. */
export function applyEffectivePolicy(
  config: AgentConfig,
  effective: EffectivePolicy,
): AgentConfig & { salted: boolean } {
  const p = effective.provenance;
  const min = (a: number, b: number | undefined) => (b === undefined ? a : Math.min(a, b));
  const durability = effective.audit.durability?.value;
  // Retention is a minimum an auditor relies on: the longer of the owner's and the policy's.
  const policyDays = effective.audit.retainDays?.value;
  const ownDays = config.provenance.retainDays;
  const longest = Math.max(policyDays ?? 0, ownDays ?? 0);
  const retainDays = longest > 0 ? longest : undefined;
  return {
    ...config,
    provenance: {
      mode: p.mode?.value ?? config.provenance.mode,
      durability:
        durability && DURABILITY_RANK[durability] > DURABILITY_RANK[config.provenance.durability]
          ? durability
          : config.provenance.durability,
      checkpointEvery: min(config.provenance.checkpointEvery, p.checkpointEvery?.value),
      checkpointMs: min(config.provenance.checkpointMs, p.checkpointMs?.value),
      ...(retainDays !== undefined ? { retainDays } : {}),
    },
    heartbeat: { intervalSeconds: min(config.heartbeat.intervalSeconds, effective.telemetry.heartbeatSeconds?.value) },
    brokers: config.brokers.map((b) => {
      const ruled = effective.telemetry.brokers.find((r) => r.url === b.url)?.share.value;
      return ruled && SHARE_RANK[ruled] < SHARE_RANK[b.share] ? { ...b, share: ruled } : b;
    }),
    salted: p.salted?.value ?? false,
  };
}

/** The device's digest salt (`home/keys/salt`, 32 random bytes, 0600), created on first use. */
export async function deviceSalt(home: string): Promise<Uint8Array> {
  const path = join(home, 'keys', 'salt');
  try {
    const salt = await readFile(path);
    if (salt.length === 32) return new Uint8Array(salt);
  } catch {
    // first use
  }
  await mkdir(join(home, 'keys'), { recursive: true, mode: 0o700 });
  const salt = randomBytes(32);
  await writeFile(path, salt, { mode: 0o600 });
  await chmod(path, 0o600);
  return new Uint8Array(salt);
}
