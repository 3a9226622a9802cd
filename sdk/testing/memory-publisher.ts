import { encodeEnvelope, PAYLOAD_TYPES, signEnvelope } from '../provenance/dsse';
import type { Signer } from '../provenance/signer';
import { buildHeartbeat, type HeartbeatInput, reduceForShare, type ShareLevel } from '../telemetry/heartbeat';
import type { Publisher, PublisherStats } from '../telemetry/publisher';

/** One heartbeat as a MemoryPublisher saw it. */
export interface PublishedHeartbeat {
  /** The heartbeat after reduction to the publisher's share level. */
  heartbeat: HeartbeatInput;
  /** The protobuf payload. */
  payload: Uint8Array;
  /** The signed binary envelope, when the publisher was given a signer. */
  envelope?: Uint8Array;
}

/**
 * An in-memory {@link Publisher} for users' tests: records every heartbeat (reduced to its share
 * level, encoded, and signed with real crypto when given a signer). No network, no disk.
 */
export class MemoryPublisher implements Publisher {
  readonly name: string;
  readonly share: ShareLevel;
  readonly published: PublishedHeartbeat[] = [];
  private readonly signer: Signer | undefined;
  private closed = false;
  private lastSeq = 0;

  constructor(o: { name?: string; share?: ShareLevel; signer?: Signer } = {}) {
    this.name = o.name ?? 'memory';
    this.share = o.share ?? 'full';
    this.signer = o.signer;
  }

  async publish(input: HeartbeatInput): Promise<void> {
    if (this.closed) throw new Error('MemoryPublisher closed');
    if (input.seq <= this.lastSeq) throw new Error(`seq ${input.seq} must exceed ${this.lastSeq}`);
    const heartbeat = reduceForShare({ ...input, outboxDepth: 0, dropped: 0 }, this.share);
    const payload = buildHeartbeat(heartbeat);
    const entry: PublishedHeartbeat = { heartbeat, payload };
    if (this.signer) entry.envelope = encodeEnvelope(await signEnvelope(this.signer, PAYLOAD_TYPES.heartbeat, payload));
    this.lastSeq = input.seq;
    this.published.push(entry);
  }

  stats(): PublisherStats {
    return {
      name: this.name,
      share: this.share,
      connected: !this.closed,
      outboxDepth: 0,
      dropped: 0,
      lastSeq: this.lastSeq,
      bdSeq: 0,
      lastReceiptSeq: this.lastSeq,
      sent: this.published.length,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
