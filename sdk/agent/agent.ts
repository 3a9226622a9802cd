import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readHealth } from '../../devices/boards/health';
import { registerDetectedBoard } from '../../devices/boards/hints';
import type { BoardProfile } from '../../devices/boards/profile';
import type { InferenceBackend } from '../engine/backend';
import { resolvePort } from '../link/discovery';
import { SerialTransport } from '../link/serial-transport';
import { LinkSession } from '../link/session';
import type { Transport } from '../link/transport';
import { PolicyManager } from '../policy/manager';
import { decodeCheckpoint } from '../provenance/checkpoint';
import type { Envelope } from '../provenance/dsse';
import { loadKeyFileSigner } from '../provenance/keys';
import type { Signer } from '../provenance/signer';
import { SYSTEM_TIMERS, type Timers } from '../telemetry/backoff';
import type { ComplianceState } from '../telemetry/heartbeat';
import { createMqttClient, type MqttClient } from '../telemetry/mqtt-client';
import type { Publisher } from '../telemetry/publisher';
import { type HeartbeatContent, Telemetry, type BrokerConfig as TelemetryBroker } from '../telemetry/telemetry';
import { policyFilter } from '../telemetry/topics';
import { type Clock, SYSTEM_CLOCK } from '../util/clock';
import { SDK_VERSION } from '../version';
import { createWarden } from '../warden/create';
import type { Warden, WardenModel } from '../warden/types';
import type { AgentConfig } from './config';
import { applyEffectivePolicy, deviceSalt } from './settings';
import { MakerVad } from './voice-activity';

/** What the agent runs on; everything has a real default, tests inject fakes. */
export interface AgentDeps {
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly backend?: InferenceBackend;
  readonly signer?: Signer;
  /** Root of the board's file tree (fixture trees in tests). */
  readonly boardRoot?: string;
  /** Extra publishers, e.g. a MemoryPublisher in tests. */
  readonly publishers?: Publisher[];
  /** Where the agent reports what it does (default: stderr lines). */
  readonly log?: (line: string) => void;
  /** Opens the MCU's transport (default: a serial port at the configured baud rate). */
  readonly openTransport?: (path: string, baudRate: number) => Transport;
}

const STATE_FOR_HEARTBEAT: Record<string, ComplianceState> = {
  COMPLIANT: 'compliant',
  DEGRADED: 'degraded',
  NON_COMPLIANT: 'non_compliant',
};

/**
 * The long-running device process: loads the configured models under the warden and the device's
 * policies, and publishes a signed heartbeat every interval to every configured broker.
 */
export class Agent {
  private timer: unknown;
  private lastCheckpointSize = 0;
  private stopping: Promise<void> | undefined;
  private unsubscribePolicy: () => void = () => {};
  private link: { session: LinkSession; vad: MakerVad } | undefined;
  private linkRetry: unknown;
  private linkAttempts = 0;
  private policyClients: MqttClient[] = [];
  private readonly refused: { name: string; loadDecision: { allowed: false; reason: string } }[] = [];

  private constructor(
    readonly config: AgentConfig,
    readonly warden: Warden,
    readonly policy: PolicyManager,
    readonly telemetry: Telemetry,
    readonly board: BoardProfile,
    private readonly unregisterBoard: () => void,
    private readonly deps: Required<Pick<AgentDeps, 'clock' | 'timers' | 'log'>> & AgentDeps,
  ) {}

  /** Starts the agent: board, policy, warden, models, telemetry, then the heartbeat loop. */
  static async start(ownerConfig: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
    const d = {
      ...deps,
      clock: deps.clock ?? SYSTEM_CLOCK,
      timers: deps.timers ?? SYSTEM_TIMERS,
      log: deps.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
    };
    const { profile, unregister } = await registerDetectedBoard(deps.boardRoot ?? '/');
    const cleanups: (() => Promise<unknown> | unknown)[] = [unregister];
    try {
      const policy = await PolicyManager.open(ownerConfig.home, { fleet: ownerConfig.fleet, clock: d.clock });
      // Policy settings (mode, durability, cadence, heartbeat interval, broker share) take effect at
      // start; a later policy change to them applies at the next restart. Gates apply at once.
      const config = applyEffectivePolicy(ownerConfig, policy.effective);
      const warden = await createWarden({
        home: config.home,
        mode: config.provenance.mode,
        durability: config.provenance.durability,
        ...(config.provenance.retainDays !== undefined ? { retainDays: config.provenance.retainDays } : {}),
        checkpointEvery: config.provenance.checkpointEvery,
        checkpointMs: config.provenance.checkpointMs,
        gate: policy.gate,
        clock: d.clock,
        ...(config.salted ? { salt: await deviceSalt(config.home) } : {}),
        ...(deps.signer ? { signer: deps.signer } : {}),
        ...(deps.backend ? { backend: deps.backend } : {}),
      });
      cleanups.push(() => warden.close());
      const brokers = await Promise.all(config.brokers.map(toTelemetryBroker));
      const telemetry = await Telemetry.start({
        dir: join(config.home, 'outbox'),
        signer: deps.signer ?? (await wardenSigner(config.home, deps)),
        fleet: config.fleet,
        brokers,
        outbox: { maxEntries: config.outbox.maxEntries },
        clock: d.clock,
        ...(deps.timers ? { timers: deps.timers } : {}),
        ...(deps.publishers ? { publishers: deps.publishers } : {}),
      });
      const agent = new Agent(config, warden, policy, telemetry, profile, unregister, d);
      // A new policy re-checks the models already loaded (refuse mode blocks them from then on).
      agent.unsubscribePolicy = policy.onChange((_effective, gate) => warden.setGate(gate));
      for (const m of config.models) await agent.loadModel(m.name, m.path);
      d.log(
        `edgewarden agent: device ${warden.deviceId}, fleet ${config.fleet}, ${warden.models.length} model(s), ${config.brokers.length} broker(s)`,
      );
      agent.schedule();
      agent.watchPolicyTopics(brokers);
      if (config.link) await agent.startLink();
      return agent;
    } catch (e) {
      for (const c of cleanups.reverse()) await c();
      throw e;
    }
  }

  private async loadModel(name: string, path: string): Promise<WardenModel | undefined> {
    try {
      return await this.warden.load(path, { name });
    } catch (e) {
      // A refused model must not take the device down: it is reported in every heartbeat instead.
      const reason = `${(e as { code?: string }).code ?? 'EW_AGENT_MODEL'}: ${(e as Error).message}`;
      this.refused.push({ name, loadDecision: { allowed: false, reason } });
      this.deps.log(`model ${name} not loaded: ${reason}`);
      return undefined;
    }
  }

  // Authorities publish signed policies retained on ew/v1/{fleet}/policy/{authority}; each broker's
  // copy is verified by the policy manager, which keeps the previous policy when one is refused.
  private watchPolicyTopics(brokers: TelemetryBroker[]): void {
    const filter = policyFilter(this.config.fleet);
    for (const b of brokers) {
      const { url, share: _share, receipts: _receipts, ...auth } = b;
      const client = createMqttClient(url, {
        ...auth,
        clientId: `ew-policy-${this.warden.deviceId}-${this.policyClients.length}`,
      });
      client.on('message', (m) => {
        void this.policy.applyMqtt(m.topic, m.payload).then((r) => {
          if (!r.ok) this.deps.log(`policy from ${m.topic} refused: ${r.refusal.code} ${r.refusal.message}`);
          else if (!r.unchanged) this.deps.log(`policy of ${r.authority} version ${r.version} applied`);
        });
      });
      void client
        .subscribe(filter, { qos: 1 })
        .catch((e) => this.deps.log(`policy subscription: ${(e as Error).message}`));
      this.policyClients.push(client);
    }
  }

  /** The serial link to the MCU, when one is open. */
  get linkSession(): LinkSession | undefined {
    return this.link?.session;
  }

  /** The voice-activity pipeline on the link (MCU audio in, signed VAD results, LED commands out). */
  get voiceActivity(): MakerVad | undefined {
    return this.link?.vad;
  }

  // Opens the link to the MCU. A board that is not plugged in yet is retried with backoff; the
  // session itself reopens a port that goes away later.
  private async startLink(): Promise<void> {
    const cfg = this.config.link!;
    const model = cfg.model ? this.warden.models.find((m) => m.name === cfg.model) : this.warden.models[0];
    if (!model) {
      this.deps.log(`link: no model ${cfg.model ?? ''} loaded to run on the MCU's data; link not started`);
      return;
    }
    try {
      const path = await resolvePort(cfg.port ?? cfg.match!);
      const open =
        this.deps.openTransport ?? ((p: string, baudRate: number) => new SerialTransport({ path: p, baudRate }));
      const session = new LinkSession({ transport: open(path, cfg.baudRate) });
      try {
        const hello = await session.open();
        const vad = new MakerVad({ session, model });
        vad.on('error', (e) => this.deps.log(`link: ${e.message}`));
        this.link = { session, vad };
        this.linkAttempts = 0;
        this.deps.log(`link: ${hello.firmwareName} ${hello.firmwareVersion} on ${path}, model ${model.name}`);
      } catch (e) {
        await session.close();
        throw e;
      }
    } catch (e) {
      const delayMs = Math.min(30_000, 500 * 2 ** this.linkAttempts++);
      this.deps.log(`link: ${(e as Error).message}; retrying in ${delayMs} ms`);
      if (!this.stopping) this.linkRetry = this.deps.timers.setTimeout(() => void this.startLink(), delayMs);
    }
  }

  private schedule(): void {
    this.timer = this.deps.timers.setTimeout(() => {
      void this.heartbeatNow()
        .catch((e) => this.deps.log(`heartbeat failed: ${(e as Error).message}`))
        .finally(() => {
          if (!this.stopping) this.schedule();
        });
    }, this.config.heartbeat.intervalSeconds * 1000);
  }

  /** Gathers and publishes one heartbeat now; returns its seq. */
  async heartbeatNow(): Promise<number> {
    return this.telemetry.publish(await this.heartbeatContent());
  }

  /** The content of the next heartbeat (also what `edgewarden agent --once --json` prints). */
  async heartbeatContent(): Promise<HeartbeatContent> {
    // A fresh checkpoint so the heartbeat vouches for everything recorded so far.
    const checkpoint: Envelope | undefined =
      this.warden.treeSize > this.lastCheckpointSize ? await this.warden.checkpoint() : this.warden.latestCheckpoint();
    const size = checkpoint ? decodeCheckpoint(checkpoint.payload).treeSize : 0;
    const previous = this.lastCheckpointSize;
    // Retention may have removed the records of a checkpoint reported long ago: then no proof.
    const provable = previous > 0 && previous >= this.warden.auditBase && previous < size;
    const proof = checkpoint && provable ? this.warden.consistencyProof(previous, size) : [];
    this.lastCheckpointSize = size;
    // Expiry is a matter of time: re-evaluate the policies before reporting compliance.
    this.policy.refresh();
    const health = await readHealth({ root: this.deps.boardRoot ?? '/', diskPath: this.config.home });
    const compliance = this.policy.compliance([...this.warden.models, ...this.refused]);
    return {
      sdkVersion: SDK_VERSION,
      board: {
        model: this.board.model,
        family: this.board.family,
        arch: this.board.arch,
        os: this.board.os,
        cpus: this.board.cpus,
      },
      health: {
        ...(health.tempMilliC === undefined ? {} : { tempMilliC: health.tempMilliC }),
        throttled: health.throttled,
        memTotalBytes: health.memTotalBytes,
        memAvailableBytes: health.memAvailableBytes,
        diskFreeBytes: health.diskFreeBytes ?? 0,
        load1Milli: Math.round(health.load1 * 1000),
        uptimeS: health.uptimeS,
      },
      models: this.warden.stats().map((s) => ({ ...s })),
      policyDigest: this.policy.gate.policyDigest,
      compliance: { state: STATE_FOR_HEARTBEAT[compliance.state] ?? 'unspecified', reasons: [...compliance.reasons] },
      ...(checkpoint ? { checkpoint } : {}),
      consistencyProof: proof,
      previousTreeSize: previous,
      policyRefusals: this.policy.takeRefusals(),
      auditAlerts: [...this.warden.auditAlerts],
    };
  }

  /** Stops cleanly: flushes the audit log (final checkpoint), sends a clean death, closes outboxes. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.deps.timers.clearTimeout(this.timer);
      this.deps.timers.clearTimeout(this.linkRetry);
      this.unsubscribePolicy();
      await Promise.allSettled(this.policyClients.map((c) => c.end()));
      if (this.link) {
        await this.link.vad.stop();
        await this.link.session.close();
      }
      await this.warden.close();
      await this.telemetry.close();
      this.unregisterBoard();
    })();
    return this.stopping;
  }
}

async function wardenSigner(home: string, deps: AgentDeps): Promise<Signer> {
  if (deps.signer) return deps.signer;
  return loadKeyFileSigner(join(home, 'keys', 'device.key'));
}

async function toTelemetryBroker(b: AgentConfig['brokers'][number]): Promise<TelemetryBroker> {
  const read = (p: string | undefined) => (p === undefined ? undefined : readFile(p, 'utf8'));
  const [ca, cert, key] = await Promise.all([read(b.ca), read(b.cert), read(b.key)]);
  return {
    url: b.url,
    share: b.share,
    receipts: b.receipts,
    protocolVersion: b.protocolVersion,
    ...(b.username === undefined ? {} : { username: b.username }),
    ...(b.password === undefined ? {} : { password: b.password }),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}
