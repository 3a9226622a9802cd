import type { InferenceBackend, TensorMeta } from '../engine/backend';
import type { TensorInput, TensorMap } from '../engine/tensor';
import type { InferenceGate, LoadDecision } from '../policy/gate';
import type { Durability } from '../provenance/audit-log';
import type { ProvenanceBundle } from '../provenance/bundle';
import type { Envelope } from '../provenance/dsse';
import type { Signer } from '../provenance/signer';
import type { Clock } from '../util/clock';
import type { ModelStats } from './stats';

/** How provenance is produced: one signed record per output, or Merkle leaves under periodic signed checkpoints. */
export type ProvenanceMode = 'batched' | 'per-output';

/** When audit-log appends reach the disk: fsync per append, every few ms (default 'group'), or left to the OS. */
export type { Durability };

/** Options of {@link createWarden}. Only `home` is required. */
export interface WardenOptions {
  /** The device home: `keys/device.key` (unless `signer` is given) and `audit/` live here. */
  readonly home: string;
  /** Default 'batched'. */
  readonly mode?: ProvenanceMode;
  /** Audit-log durability; default 'group'. */
  readonly durability?: Durability;
  /**
   * Audit-log retention in days: sealed segments last written longer ago are deleted (records are
   * kept at least this long; the chain and the tree go on). Unset: the log keeps everything.
   */
  readonly retainDays?: number;
  /** Signs records and checkpoints; default: the key file `home/keys/device.key` (mode 0600). */
  readonly signer?: Signer;
  /** Inference runtime; default: ONNX Runtime (onnxruntime-node). */
  readonly backend?: InferenceBackend;
  /** Policy gate asked at load and after every inference; default: allow everything. */
  readonly gate?: InferenceGate;
  readonly clock?: Clock;
  /** Cut a signed checkpoint after this many records (default 1000). */
  readonly checkpointEvery?: number;
  /** ... or this many milliseconds after the first record not yet covered (default 1000). */
  readonly checkpointMs?: number;
  /** Device secret: tensor digests become HMAC-SHA256 keyed by it (the verifier then needs it). */
  readonly salt?: Uint8Array;
  /** Providers to try, e.g. ['cuda', 'cpu']; default from the board profile, else CPU. */
  readonly executionProviders?: string[];
  /** ONNX Runtime intra-op threads; default from the board profile, else the runtime's default. */
  readonly intraOpThreads?: number;
  /** Labels added to every record (per-inference labels override them). */
  readonly labels?: Record<string, string>;
  /**
   * When the provenance worker thread starts. 'on-demand' (default): with the second inference; the
   * first is digested and signed on the inference thread, so the thread's ~30 ms boot does not delay
   * the first output. 'at-create': with `createWarden`, for applications that want the same cost per
   * inference from the first one (a real-time stream that starts at once).
   */
  readonly startWorker?: 'on-demand' | 'at-create';
}

/** What the policy decided for one inference. */
export interface InferDecision {
  readonly outcome: 'allowed' | 'blocked' | 'redacted';
  readonly ruleId: string;
  readonly authority: string;
}

/** The result of {@link WardenModel.infer}: outputs at once, their provenance later. */
export interface InferResult {
  /** What the application may use: the outputs, redacted outputs, or an empty map when blocked. */
  readonly outputs: TensorMap;
  readonly decision: InferDecision;
  /** Resolves once the record is signed (per-output) or covered by a signed checkpoint (batched), and durable. */
  readonly provenance: Promise<ProvenanceBundle>;
}

/** A model loaded under the warden: every inference is gated, recorded and signed. */
export interface WardenModel {
  readonly name: string;
  /** SHA-256 over the model file and its external-data files. */
  readonly digest: Uint8Array;
  readonly path: string;
  readonly executionProvider: string;
  readonly fallbackReasons: readonly string[];
  readonly inputs: readonly TensorMeta[];
  readonly outputs: readonly TensorMeta[];
  /** The gate's verdict on this model (re-evaluated when the gate changes). */
  readonly loadDecision: LoadDecision;
  /**
   * Runs the model. Inputs are checked against its metadata first (`EW_ENGINE_INPUT`). The outputs
   * come back as soon as the model has run and the gate has decided; the provenance bundle follows.
   */
  infer(inputs: Record<string, TensorInput>, opts?: { labels?: Record<string, string> }): Promise<InferResult>;
}

/** A device's accountable inference runtime. */
export interface Warden {
  readonly deviceId: string;
  /** SHA-256 of the raw public key. */
  readonly keyId: Uint8Array;
  /** Raw 32-byte Ed25519 public key: what verifiers trust. */
  readonly publicKey: Uint8Array;
  readonly mode: ProvenanceMode;
  /** Loads a model: digest, gate check (`EW_WARDEN_MODEL_REFUSED`), runtime session. */
  /** `onProgress` reports the model digest's progress (bytes hashed of the model and its external data). */
  load(
    path: string,
    opts?: { name?: string; onProgress?: (bytesDone: number, bytesTotal: number) => void },
  ): Promise<WardenModel>;
  readonly models: readonly WardenModel[];
  /** Replaces the policy gate; takes effect between inferences, never inside one. */
  setGate(gate: InferenceGate): void;
  /** Cuts a signed checkpoint now over every record appended so far. */
  checkpoint(): Promise<Envelope>;
  latestCheckpoint(): Envelope | undefined;
  /** Number of records in the audit log. */
  readonly treeSize: number;
  /** The first record the audit log still keeps (0 unless `retainDays` removed older ones). */
  readonly auditBase: number;
  /** RFC 9162 consistency proof between two tree sizes of the audit log (`EW_PROVENANCE_PRUNED` before `auditBase`). */
  consistencyProof(oldSize: number, newSize?: number): Uint8Array[];
  stats(): ModelStats[];
  /** Recovery events and damage found in the audit log when it was opened (for the next heartbeat). */
  readonly auditAlerts: readonly string[];
  /** Flushes: every pending bundle resolves (a final checkpoint is cut), then the log and models close. */
  close(): Promise<void>;
}
