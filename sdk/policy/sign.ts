import { type Envelope, PAYLOAD_TYPES, pae, signEnvelope } from '../provenance/dsse';
import type { Signer } from '../provenance/signer';
import { encodePolicyDocument } from './canonical';
import { parsePolicyDocument } from './document';

/** Signs canonical policy bytes as a DSSE envelope of payloadType policy. */
export function signPolicy(signer: Signer, payload: Uint8Array): Promise<Envelope> {
  return signEnvelope(signer, PAYLOAD_TYPES.policy, payload);
}

/** Validates a YAML policy document, encodes it canonically and signs it. */
export function signPolicyYaml(signer: Signer, yamlText: string, file?: string): Promise<Envelope> {
  return signPolicy(signer, encodePolicyDocument(parsePolicyDocument(yamlText, file)));
}

/**
 * Adds another authority's signature to a signed policy (for sections that need k of n). The
 * payload is not touched; a second signature by the same key replaces nothing and is skipped.
 */
export async function cosignPolicy(signer: Signer, env: Envelope): Promise<Envelope> {
  const kid = Buffer.from(signer.keyId);
  if (env.signatures.some((s) => kid.equals(s.keyid))) return env;
  const msg = pae(env.payloadType, env.payload);
  const sig = signer.signSync ? signer.signSync(msg) : await signer.sign(msg);
  return { ...env, signatures: [...env.signatures, { keyid: signer.keyId, sig }] };
}
