// Test-only helpers of the fleet area (not exported from the package): simulated devices that sign
// real messages, and probes for the optional services (Mosquitto, PostgreSQL).
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { edgewarden as provenanceProto } from '../__generated__/provenance.js';
import { type Envelope, encodeEnvelope, PAYLOAD_TYPES, signEnvelopeSync } from '../provenance/dsse';
import { KeySigner } from '../provenance/keys';
import { leafHash, MerkleTree } from '../provenance/merkle';
import { buildHeartbeat, type HeartbeatInput } from '../telemetry/heartbeat';
import { encodeLifecycle } from '../telemetry/lifecycle';
import { deviceTopic } from '../telemetry/topics';
import { withLifecyclePublicKey } from './lifecycle-key';

/** PostgreSQL URL the tests use (EDGEWARDEN_TEST_PG overrides). */
export const TEST_PG_URL = process.env.EDGEWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Mosquitto URL the tests use (EDGEWARDEN_TEST_MQTT overrides). */
export const TEST_MOSQUITTO_URL = process.env.EDGEWARDEN_TEST_MQTT ?? 'mqtt://127.0.0.1:1883';

/** True when something accepts TCP connections on 127.0.0.1:port within timeoutMs. */
export function portAnswers(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** True when PostgreSQL answers at TEST_PG_URL (a real login, not just the port). */
export async function pgAnswers(): Promise<boolean> {
  const u = new URL(TEST_PG_URL);
  if (!(await portAnswers(Number(u.port || 5432), u.hostname))) return false;
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** A unique name for a fleet, schema or share group of one test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** A simulated device with a real key: builds signed births, deaths, heartbeats and checkpoints. */
export class SimDevice {
  readonly signer = KeySigner.generate();
  readonly bootId = randomBytes(16);
  readonly tree = new MerkleTree();
  bdSeq = 1;
  seq = 0;
  private lastCheckpoint: { size: number } | undefined;

  constructor(
    readonly fleet: string,
    private readonly now: () => number = Date.now,
  ) {}

  get id(): string {
    return this.signer.deviceId;
  }

  topic(kind: 'birth' | 'death' | 'hb' | 'ckpt' | 'receipt' | 'cmd'): string {
    return deviceTopic(this.fleet, this.id, kind);
  }

  sign(payloadType: string, payload: Uint8Array): Envelope {
    return signEnvelopeSync(this.signer, payloadType, payload);
  }

  bytes(env: Envelope): Uint8Array {
    return encodeEnvelope(env);
  }

  /** A birth carrying the public key (for TOFU). */
  birth(o: { bdSeq?: number; timeMs?: number; withKey?: boolean } = {}): Uint8Array {
    const payload = encodeLifecycle({
      kind: 'birth',
      deviceKeyid: this.signer.keyId,
      fleet: this.fleet,
      bdSeq: o.bdSeq ?? this.bdSeq,
      timeUnixMs: o.timeMs ?? this.now(),
      bootId: this.bootId,
    });
    const p = o.withKey === false ? payload : withLifecyclePublicKey(payload, this.signer.publicKey);
    return this.bytes(this.sign(PAYLOAD_TYPES.lifecycle, p));
  }

  death(o: { bdSeq?: number; clean?: boolean } = {}): Uint8Array {
    const payload = encodeLifecycle({
      kind: 'death',
      deviceKeyid: this.signer.keyId,
      fleet: this.fleet,
      bdSeq: o.bdSeq ?? this.bdSeq,
      timeUnixMs: this.now(),
      bootId: this.bootId,
      clean: o.clean ?? true,
    });
    return this.bytes(this.sign(PAYLOAD_TYPES.lifecycle, payload));
  }

  /** Appends n fake records to the device's audit tree. */
  grow(n: number): void {
    for (let i = 0; i < n; i++) this.tree.append(leafHash(randomBytes(24)));
  }

  checkpointEnvelope(size = this.tree.size, root = this.tree.root(size)): Envelope {
    const payload = provenanceProto.v1.Checkpoint.encode({
      deviceKeyid: this.signer.keyId,
      treeSize: size,
      rootHash: root,
      timeUnixMs: this.now(),
      bootId: this.bootId,
    }).finish();
    return this.sign(PAYLOAD_TYPES.checkpoint, payload);
  }

  /** The heartbeat fields of the next heartbeat (seq incremented), with a checkpoint when the tree is non-empty. */
  nextInput(over: Partial<HeartbeatInput> = {}): HeartbeatInput {
    this.seq++;
    const input: HeartbeatInput = {
      deviceKeyid: this.signer.keyId,
      fleet: this.fleet,
      bdSeq: this.bdSeq,
      seq: this.seq,
      timeUnixMs: this.now(),
      bootId: this.bootId,
      board: { model: 'Simulated Board', family: 'generic-linux', arch: 'x64', os: 'linux', cpus: 2 },
      health: {
        tempMilliC: 45000,
        throttled: 0,
        memTotalBytes: 1 << 30,
        memAvailableBytes: 1 << 29,
        diskFreeBytes: 1 << 30,
        load1Milli: 100,
        uptimeS: 60,
      },
      models: [
        {
          digest: new Uint8Array(32).fill(7),
          name: 'vad',
          inferences: 10 * this.seq,
          blocked: 0,
          errors: 0,
          p50Us: 700,
          p99Us: 1500,
          executionProvider: 'cpu',
        },
      ],
      compliance: { state: 'compliant', reasons: [] },
    };
    if (this.tree.size > 0) {
      input.checkpoint = this.checkpointEnvelope();
      if (this.lastCheckpoint) {
        input.previousTreeSize = this.lastCheckpoint.size;
        input.consistencyProof = this.tree.consistencyProof(this.lastCheckpoint.size);
      }
      this.lastCheckpoint = { size: this.tree.size };
    }
    return { ...input, ...over };
  }

  /** Every heartbeat made by {@link heartbeat}, in order (for replays). */
  readonly heartbeatLog: Uint8Array[] = [];

  /** The next signed heartbeat as bytes. */
  heartbeat(over: Partial<HeartbeatInput> = {}): Uint8Array {
    const b = this.bytes(this.sign(PAYLOAD_TYPES.heartbeat, buildHeartbeat(this.nextInput(over))));
    this.heartbeatLog.push(b);
    return b;
  }
}
