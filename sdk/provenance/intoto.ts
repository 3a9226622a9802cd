import type { TensorInput } from '../engine/tensor';
import { type DsseJson, envelopeToJson, signEnvelope, signEnvelopeSync } from './dsse';
import type { RecordFields } from './record';
import { recordToJson } from './record';
import type { Signer } from './signer';
import { tensorDigest } from './tensor-digest';

/** DSSE payloadType of in-toto statements. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** predicateType of an edgewarden record as an in-toto predicate. */
export const EDGEWARDEN_PREDICATE_TYPE = 'https://edgewarden.dev/provenance/record/v1';

/** An in-toto Statement v1. */
export interface InTotoStatement {
  _type: typeof INTOTO_STATEMENT_TYPE;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The record as an in-toto Statement v1. The first subject is the set of outputs under the record's
 * canonical output digest (`sha256`, or `hmacSha256` in salted mode); with `outputs`, each output
 * tensor is also a subject under its own canonical digest (of a map holding only that tensor).
 * The predicate is the record's JSON view.
 */
export function recordToInTotoStatement(
  record: RecordFields,
  outputs?: Record<string, TensorInput>,
  salt?: Uint8Array,
): InTotoStatement {
  const algo = record.salted ? 'hmacSha256' : 'sha256';
  const model = record.modelName || 'model';
  const subject: InTotoStatement['subject'] = [
    { name: `${model}/outputs`, digest: { [algo]: hex(record.outputDigest) } },
  ];
  if (outputs) {
    for (const name of Object.keys(outputs).sort()) {
      const one = { [name]: outputs[name]! };
      subject.push({
        name: `${model}/outputs/${name}`,
        digest: { [algo]: hex(tensorDigest(one, record.salted ? salt : undefined)) },
      });
    }
  }
  return {
    _type: INTOTO_STATEMENT_TYPE,
    subject,
    predicateType: EDGEWARDEN_PREDICATE_TYPE,
    predicate: recordToJson(record),
  };
}

const encodeStatement = (s: InTotoStatement) => new Uint8Array(Buffer.from(JSON.stringify(s), 'utf8'));

/** Signs a statement as standard DSSE JSON (payloadType `application/vnd.in-toto+json`); needs an in-process signer. */
export function signInTotoStatement(
  signer: Signer & { signSync(d: Uint8Array): Uint8Array },
  statement: InTotoStatement,
): DsseJson {
  return envelopeToJson(signEnvelopeSync(signer, INTOTO_PAYLOAD_TYPE, encodeStatement(statement)));
}

/** {@link signInTotoStatement} for any signer (hardware signers are asynchronous). */
export async function signInTotoStatementAsync(signer: Signer, statement: InTotoStatement): Promise<DsseJson> {
  return envelopeToJson(await signEnvelope(signer, INTOTO_PAYLOAD_TYPE, encodeStatement(statement)));
}
