import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { InferenceBackend } from '../engine/backend';
import { loadModel } from '../engine/load';
import { OnnxRuntimeBackend } from '../engine/onnx-backend';
import { EdgewardenError } from '../errors';
import { type InferenceGate, OPEN_GATE } from '../policy/gate';
import { AuditLog } from '../provenance/audit-log';
import type { Envelope } from '../provenance/dsse';
import { deviceIdOf, loadKeyFileSigner } from '../provenance/keys';
import type { Signer } from '../provenance/signer';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import { GuardedModel, type ModelHost } from './model';
import { ProvenancePipeline } from './pipeline';
import { DigestWorker } from './sign-worker';
import type { ModelStats } from './stats';
import type { ProvenanceMode, Warden, WardenModel, WardenOptions } from './types';

const DEFAULT_CHECKPOINT_EVERY = 1000;
const DEFAULT_CHECKPOINT_MS = 1000;

let processBootId: Uint8Array | undefined;

/** The kernel's id of this boot (16 bytes), or a random id per process where there is none. */
function bootId(): Uint8Array {
  processBootId ??= readBootId();
  return processBootId;
}

function readBootId(): Uint8Array {
  try {
    const hex = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');
    if (/^[0-9a-f]{32}$/i.test(hex)) return new Uint8Array(Buffer.from(hex, 'hex'));
  } catch {
    // not Linux, or /proc is not mounted
  }
  return new Uint8Array(randomBytes(16));
}

// Best effort: systemd-timesyncd touches this file once the clock is synchronised. Checked at most
// once a second so that records never wait on it.
function clockSyncProbe(clock: Clock): () => boolean {
  let last = Number.NEGATIVE_INFINITY;
  let synced = false;
  return () => {
    const now = clock.now();
    if (now - last >= 1000) {
      last = now;
      synced = existsSync('/run/systemd/timesync/synchronized');
    }
    return synced;
  };
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new EdgewardenError('EW_WARDEN_OPTIONS', `${name} must be a positive integer, got ${v}`, {
      details: { option: name },
    });
  }
  return v;
}

/** A signer whose private key can be handed to the worker thread (the key-file signer). */
function exportablePem(signer: Signer): string | undefined {
  const s = signer as Signer & { privateKeyPem?: () => string };
  if (typeof s.privateKeyPem !== 'function') return undefined;
  try {
    return s.privateKeyPem();
  } catch {
    return undefined;
  }
}

class WardenImpl implements Warden, ModelHost {
  readonly deviceId: string;
  readonly keyId: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly auditAlerts: readonly string[];
  readonly runtimeVersion: string;
  gate: InferenceGate;
  closed = false;
  private readonly loaded: GuardedModel[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    readonly mode: ProvenanceMode,
    readonly clock: Clock,
    readonly labels: Record<string, string>,
    readonly pipeline: ProvenancePipeline,
    private readonly log: AuditLog,
    private readonly worker: DigestWorker,
    private readonly backend: InferenceBackend,
    private readonly opts: WardenOptions,
    signer: Signer,
    gate: InferenceGate,
    alerts: string[],
  ) {
    this.keyId = signer.keyId;
    this.publicKey = signer.publicKey;
    this.deviceId = deviceIdOf(signer.keyId);
    this.gate = gate;
    this.auditAlerts = alerts;
    this.runtimeVersion = `${backend.name} ${backend.runtimeVersion}`;
  }

  get models(): readonly WardenModel[] {
    return this.loaded;
  }

  get treeSize(): number {
    return this.log.size;
  }

  get auditBase(): number {
    return this.log.base;
  }

  async load(
    path: string,
    opts: { name?: string; onProgress?: (bytesDone: number, bytesTotal: number) => void } = {},
  ): Promise<WardenModel> {
    if (this.closed) throw new EdgewardenError('EW_WARDEN_CLOSED', 'the warden is closed');
    // The engine applies the board profile's providers and threads where these are not given.
    const loaded = await loadModel(this.backend, path, {
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(this.opts.executionProviders ? { executionProviders: this.opts.executionProviders } : {}),
      ...(this.opts.intraOpThreads !== undefined ? { intraOpThreads: this.opts.intraOpThreads } : {}),
    });
    const decision = this.gate.checkLoad({ name: loaded.name, digest: loaded.digest, dir: dirname(resolve(path)) });
    if (!decision.allowed) {
      await loaded.session.release();
      throw new EdgewardenError(
        'EW_WARDEN_MODEL_REFUSED',
        `policy refuses model ${loaded.name} (sha256:${Buffer.from(loaded.digest).toString('hex')}): ${decision.reason ?? 'not allowed'}`,
        { details: { model: loaded.name, reason: decision.reason, ruleId: decision.ruleId } },
      );
    }
    const model = new GuardedModel(loaded, decision, this);
    this.loaded.push(model);
    return model;
  }

  setGate(gate: InferenceGate): void {
    this.gate = gate;
    for (const m of this.loaded) m.recheck(gate, dirname(resolve(m.path)));
  }

  async checkpoint(): Promise<Envelope> {
    if (this.closed) throw new EdgewardenError('EW_WARDEN_CLOSED', 'the warden is closed');
    await this.pipeline.drain();
    return this.pipeline.cut();
  }

  latestCheckpoint(): Envelope | undefined {
    return this.pipeline.latestCheckpoint();
  }

  consistencyProof(oldSize: number, newSize?: number): Uint8Array[] {
    return this.log.tree.consistencyProof(oldSize, newSize);
  }

  stats() {
    return this.loaded.map((m): ModelStats => m.counters.snapshot());
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    try {
      await this.pipeline.flush();
    } finally {
      this.pipeline.stop();
      await this.worker.close();
      await this.log.close();
      await Promise.allSettled(this.loaded.map((m) => m.release()));
    }
  }
}

/**
 * Opens a device's accountable inference runtime: its identity (the key file in `home/keys`, or
 * `signer`), its audit log (`home/audit`), the policy gate and the inference backend. Fails with
 * `EW_PROVENANCE_KEY_FILE` before any model can run when there is no usable key: the warden never
 * returns an unsigned output.
 *
 * @example
 * const warden = await createWarden({ home: '/var/lib/edgewarden', mode: 'batched' });
 * const model = await warden.load('model.onnx');
 * const { outputs, provenance } = await model.infer({ x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } });
 * const verdict = verifyBundle(await provenance, outputs, { trust: [warden.publicKey] });
 * await warden.close();
 */
export async function createWarden(opts: WardenOptions): Promise<Warden> {
  if (typeof opts?.home !== 'string' || opts.home === '') {
    throw new EdgewardenError('EW_WARDEN_OPTIONS', 'createWarden needs { home: <device home directory> }');
  }
  const mode = opts.mode ?? 'batched';
  if (mode !== 'batched' && mode !== 'per-output') {
    throw new EdgewardenError('EW_WARDEN_OPTIONS', `mode must be 'batched' or 'per-output', got ${String(mode)}`, {
      details: { option: 'mode' },
    });
  }
  const durability = opts.durability ?? 'group';
  if (!['always', 'group', 'none'].includes(durability)) {
    throw new EdgewardenError('EW_WARDEN_OPTIONS', `durability must be always, group or none, got ${durability}`, {
      details: { option: 'durability' },
    });
  }
  const retainDays = opts.retainDays;
  if (retainDays !== undefined && !(typeof retainDays === 'number' && retainDays > 0 && Number.isFinite(retainDays))) {
    throw new EdgewardenError('EW_WARDEN_OPTIONS', `retainDays must be a positive number of days, got ${retainDays}`, {
      details: { option: 'retainDays' },
    });
  }
  const startWorker = opts.startWorker ?? 'on-demand';
  if (startWorker !== 'on-demand' && startWorker !== 'at-create') {
    const got = String(startWorker);
    throw new EdgewardenError('EW_WARDEN_OPTIONS', `startWorker must be 'on-demand' or 'at-create', got ${got}`, {
      details: { option: 'startWorker' },
    });
  }
  const checkpointEvery = positiveInt('checkpointEvery', opts.checkpointEvery, DEFAULT_CHECKPOINT_EVERY);
  const checkpointMs = positiveInt('checkpointMs', opts.checkpointMs, DEFAULT_CHECKPOINT_MS);
  const home = resolve(opts.home);
  const clock = opts.clock ?? SYSTEM_CLOCK;
  // Identity first: no key, no warden (and so no output without provenance).
  const signer = opts.signer ?? (await loadKeyFileSigner(join(home, 'keys', 'device.key')));
  // Its thread starts with the second inference (by default); the first is digested and signed here.
  const pem = mode === 'per-output' ? exportablePem(signer) : undefined;
  const worker = new DigestWorker({
    threadAtStart: startWorker === 'at-create',
    ...(opts.salt ? { salt: opts.salt } : {}),
    ...(pem !== undefined ? { privateKeyPem: pem } : {}),
    // The same key, already parsed: signing on this thread until the worker's thread is up.
    ...(pem !== undefined && signer.signSync ? { signSync: signer.signSync.bind(signer) } : {}),
  });
  let log: AuditLog | undefined;
  let logPending: Promise<AuditLog> | undefined;
  try {
    const backend: InferenceBackend = opts.backend ?? new OnnxRuntimeBackend();
    // AuditLog.open creates the directory (0700) when there is none.
    const logP = AuditLog.open(join(home, 'audit'), {
      durability,
      clock,
      ...(retainDays !== undefined ? { retainDays } : {}),
    });
    logPending = logP;
    log = await logP;
    const alerts: string[] = [];
    if (log.recovery) alerts.push(`audit log recovered from a torn tail: ${JSON.stringify(log.recovery)}`);
    if (log.damage) {
      alerts.push(`audit log damaged at index ${log.damage.index}: ${log.damage.code} ${log.damage.message}`);
    }
    if (log.retentionError) alerts.push(`audit log retention: ${log.retentionError.message}`);
    const pipeline = new ProvenancePipeline({
      mode,
      log,
      signer,
      worker,
      clock,
      bootId: bootId(),
      clockSynced: clockSyncProbe(clock),
      salted: opts.salt !== undefined,
      checkpointEvery,
      checkpointMs,
    });
    return new WardenImpl(
      mode,
      clock,
      // Frozen: the pipeline then sends this label set to its worker once, not with every record.
      Object.freeze({ ...(opts.labels ?? {}) }),
      pipeline,
      log,
      worker,
      backend,
      opts,
      signer,
      opts.gate ?? OPEN_GATE,
      alerts,
    );
  } catch (err) {
    await worker.close();
    await (log ?? (await logPending?.catch(() => undefined)))?.close();
    throw err;
  }
}
