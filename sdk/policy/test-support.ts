// Shared by this folder's tests (not part of the public API).
import { stringify } from 'yaml';
import { type Envelope, encodeEnvelope } from '../provenance/dsse';
import { KeySigner } from '../provenance/keys';
import type { Clock } from '../util/clock';
import { composePolicies, type EffectivePolicy } from './compose';
import { signPolicyYaml } from './sign';
import { TrustConfig } from './trust';
import { type VerifiedPolicy, verifyPolicyEnvelope } from './verify';

export const T0 = Date.parse('2026-11-28T00:00:00Z');
export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;
export const DIGEST_C = `sha256:${'c'.repeat(64)}`;

/** A clock the test moves by hand. */
export function manualClock(start = T0): Clock & { set(ms: number): void; advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    monotonicNs: () => BigInt(now) * 1_000_000n,
    set: (ms) => {
      now = ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

/** A minimal valid policy document, with overrides. */
export function doc(authority: string, version: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'edgewarden/v1', kind: 'Policy', authority, version, ...extra };
}

export function signDoc(signer: KeySigner, d: Record<string, unknown>): Promise<Envelope> {
  return signPolicyYaml(signer, stringify(d));
}

export async function signedBytes(signer: KeySigner, d: Record<string, unknown>): Promise<Uint8Array> {
  return encodeEnvelope(await signDoc(signer, d));
}

/** Three authorities with fresh keys and a trust config over them. */
export function authorities(thresholds: Record<string, number> = {}) {
  const owner = KeySigner.generate();
  const fleet = KeySigner.generate();
  const community = KeySigner.generate();
  const trust = new TrustConfig(
    [
      { name: 'owner', key: owner.publicKey },
      { name: 'fleet', key: fleet.publicKey },
      { name: 'community', key: community.publicKey },
    ],
    thresholds,
  );
  return { owner, fleet, community, trust };
}

/** The effective policy of documents signed by the given authorities (verified for real). */
export async function effectiveOf(
  trust: TrustConfig,
  ...signed: [KeySigner, Record<string, unknown>][]
): Promise<EffectivePolicy> {
  const verified: VerifiedPolicy[] = [];
  for (const [signer, d] of signed) {
    const v = verifyPolicyEnvelope(await signDoc(signer, d), trust, { now: T0 });
    if (!v.ok) throw new Error(`${v.code}: ${v.message}`);
    verified.push(v);
  }
  return composePolicies(verified, trust, T0);
}
