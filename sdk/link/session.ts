import { EdgewardenError, isEdgewardenError } from '../errors';
import type { LinkCode } from './codes';
import { TypedEmitter } from './emitter';
import { FramedLink, type LinkStats } from './framed-link';
import { MAX_PAYLOAD } from './framing';
import {
  type CommandBody,
  type HelloInfo,
  type LinkBody,
  type LinkBodyType,
  type LinkMessage,
  NackReason,
  nackReasonName,
  PROTOCOL_VERSION,
  type ResultBody,
  type SensorBatch,
} from './messages';
import type { Transport } from './transport';

/** How a session reopens a lost transport: exponential backoff with jitter. */
export interface ReconnectOptions {
  /** First delay (default 100 ms). */
  initialDelayMs?: number;
  /** Cap of the delay (default 5000 ms). */
  maxDelayMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** ± fraction of random spread on each delay (default 0.2). */
  jitter?: number;
  /** Random source for the jitter (default Math.random). */
  random?: () => number;
}

export interface LinkSessionOptions {
  transport: Transport;
  /** Time to wait for the answer to one attempt of a request (default 250 ms). */
  requestTimeoutMs?: number;
  /** Extra attempts after the first one times out (default 2). A retry reuses the seq. */
  retries?: number;
  /** Time to wait for Hello per attempt (default 1000 ms). */
  helloTimeoutMs?: number;
  /** Extra Hello attempts (default 2). */
  helloRetries?: number;
  /** A ping is sent after this long without a frame from the peer (default 1000 ms; 0 disables liveness). */
  pingIntervalMs?: number;
  /** The peer is declared silent when this many pings in a row go unanswered (default 3). */
  maxMissedPings?: number;
  /** Reopen a lost transport (default on); `false` ends the session instead. */
  reconnect?: ReconnectOptions | false;
  /** Largest payload this host accepts (default MAX_PAYLOAD). */
  maxPayload?: number;
  /** Protocol version this host asks for (default PROTOCOL_VERSION; the firmware's must be equal). */
  protocolVersion?: number;
}

/** Per-request overrides. */
export interface RequestOptions {
  timeoutMs?: number;
  retries?: number;
}

export type DisconnectReason = 'lost' | 'silent' | 'closed' | 'protocol';

export interface LinkSessionEvents {
  [event: string]: unknown[];
  /** The firmware said Hello: after `open()` and each reconnect (`reset: false`), or unasked after it rebooted (`reset: true`). */
  hello: [info: HelloInfo, meta: { reset: boolean }];
  sensorBatch: [batch: SensorBatch];
  log: [log: { level: number; text: string }];
  /** The link went down; pending requests were rejected with EW_LINK_DISCONNECTED. */
  disconnect: [info: { reason: DisconnectReason; error?: Error }];
  /** The link is back after a disconnect, handshake done. */
  reconnect: [info: { attempts: number; downtimeMs: number; hello: HelloInfo }];
  /** One reopen attempt failed; another follows after `nextDelayMs`. */
  reconnectFailed: [info: { attempt: number; error: Error; nextDelayMs: number }];
  /** Every decoded message from the device. */
  message: [msg: LinkMessage];
  /** Something the peer sent that this host could not use (malformed payload, unknown answer). */
  protocolError: [error: EdgewardenError];
  /** The session ended (close() or reconnect disabled). */
  close: [];
}

/** Counters of a session. */
export interface SessionStats extends LinkStats {
  requests: number;
  retries: number;
  timeouts: number;
  nacks: number;
  pingsSent: number;
  reconnects: number;
  /** Answers whose request was no longer pending (late answers to a retried request). */
  staleAnswers: number;
}

type SessionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

interface Pending {
  type: LinkBodyType;
  accepts: readonly LinkBodyType[];
  resolve: (msg: LinkMessage) => void;
  reject: (err: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const ANSWERS: Partial<Record<LinkBodyType, readonly LinkBodyType[]>> = {
  helloRequest: ['hello', 'nack'],
  command: ['ack', 'nack'],
  result: ['ack', 'nack'],
  ping: ['pong', 'nack'],
};

const linkError = (code: LinkCode, message: string, details?: Record<string, unknown>, cause?: unknown) =>
  new EdgewardenError<LinkCode>(code, message, { details, cause });

/** The NackReason code of an `EW_LINK_NACK` error, else undefined. */
export function nackReasonOf(err: unknown): number | undefined {
  return isEdgewardenError(err, 'EW_LINK_NACK') ? (err.details.reason as number) : undefined;
}

/**
 * The host side of the link protocol over one transport: the Hello handshake with a protocol
 * version check, requests with seq numbers answered by Ack/Nack (timeouts and retries), typed
 * events for what the device streams, ping liveness, and reopening a lost transport with backoff.
 *
 * ```ts
 * const session = new LinkSession({ transport: new SerialTransport({ path: '/dev/ttyACM0' }) });
 * const hello = await session.open();
 * session.on('sensorBatch', (b) => ...);
 * await session.command(1, 1); // LED on; throws EW_LINK_NACK with details.reason if refused
 * ```
 */
export class LinkSession extends TypedEmitter<LinkSessionEvents> {
  readonly transport: Transport;
  readonly #link: FramedLink;
  readonly #opts: Required<Omit<LinkSessionOptions, 'transport' | 'reconnect'>> & {
    reconnect: Required<ReconnectOptions> | false;
  };
  #state: SessionState = 'idle';
  #seq = 0;
  readonly #pending = new Map<number, Pending>();
  #hello?: HelloInfo;
  #pinger?: ReturnType<typeof setInterval>;
  #heardSinceTick = false;
  #missedPings = 0;
  #reconnectTimer?: ReturnType<typeof setTimeout>;
  #lostAt = 0;
  readonly #counters = { requests: 0, retries: 0, timeouts: 0, nacks: 0, pingsSent: 0, reconnects: 0, staleAnswers: 0 };

  constructor(options: LinkSessionOptions) {
    super();
    this.transport = options.transport;
    const rc = options.reconnect;
    this.#opts = {
      requestTimeoutMs: options.requestTimeoutMs ?? 250,
      retries: options.retries ?? 2,
      helloTimeoutMs: options.helloTimeoutMs ?? 1000,
      helloRetries: options.helloRetries ?? 2,
      pingIntervalMs: options.pingIntervalMs ?? 1000,
      maxMissedPings: options.maxMissedPings ?? 3,
      maxPayload: options.maxPayload ?? MAX_PAYLOAD,
      protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION,
      reconnect:
        rc === false
          ? false
          : {
              initialDelayMs: rc?.initialDelayMs ?? 100,
              maxDelayMs: rc?.maxDelayMs ?? 5000,
              factor: rc?.factor ?? 2,
              jitter: rc?.jitter ?? 0.2,
              random: rc?.random ?? Math.random,
            },
    };
    this.#link = new FramedLink(this.transport, { maxPayload: this.#opts.maxPayload });
    this.#link.on('message', (msg) => this.#onMessage(msg));
    this.#link.on('malformed', (err) => this.emit('protocolError', err));
    this.transport.on('close', (err) => this.#onTransportClose(err));
  }

  /** What the firmware said in its latest Hello (undefined before the first handshake). */
  get hello(): HelloInfo | undefined {
    return this.#hello;
  }

  get state(): SessionState {
    return this.#state;
  }

  get stats(): SessionStats {
    return { ...this.#link.stats, ...this.#counters };
  }

  /** Largest payload the firmware accepts (its Hello's max_rx_payload, else MAX_PAYLOAD). */
  get peerMaxPayload(): number {
    return this.#hello?.maxRxPayload || MAX_PAYLOAD;
  }

  /**
   * Opens the transport and does the Hello handshake. Rejects with `EW_LINK_OPEN`,
   * `EW_LINK_HANDSHAKE` (no Hello), or `EW_LINK_PROTOCOL_VERSION` (another protocol version; the
   * transport is closed again).
   */
  async open(): Promise<HelloInfo> {
    if (this.#state !== 'idle') throw linkError('EW_LINK_CLOSED', `session is ${this.#state}, open() works once`);
    this.#state = 'connecting';
    try {
      const hello = await this.#connect();
      this.#state = 'open';
      this.#startPinger();
      this.emit('hello', hello, { reset: false });
      return hello;
    } catch (err) {
      this.#state = 'closed';
      await this.transport.close().catch(() => undefined);
      throw err;
    }
  }

  /** Sends a request and resolves with its answer; rejects with EW_LINK_NACK, EW_LINK_TIMEOUT, EW_LINK_DISCONNECTED. */
  request(body: LinkBody, options: RequestOptions = {}): Promise<LinkMessage> {
    if (this.#state !== 'open') return Promise.reject(linkError('EW_LINK_NOT_OPEN', `session is ${this.#state}`));
    return this.#request(body, options.timeoutMs ?? this.#opts.requestTimeoutMs, options.retries ?? this.#opts.retries);
  }

  /** Sets an actuator; resolves when the firmware acknowledged it (EW_LINK_NACK with the reason otherwise). */
  async command(
    actuatorId: number,
    value: number,
    options: RequestOptions & { durationMs?: number } = {},
  ): Promise<void> {
    const body: CommandBody = { actuatorId, value, durationMs: options.durationMs ?? 0 };
    await this.request({ type: 'command', ...body }, options);
  }

  /** Sends an inference result to the firmware; resolves on its Ack. */
  async sendResult(result: ResultBody, options: RequestOptions = {}): Promise<void> {
    await this.request({ type: 'result', ...result }, options);
  }

  /** Pings the firmware; resolves with the round trip in milliseconds. */
  async ping(options: RequestOptions = {}): Promise<number> {
    const t0 = performance.now();
    await this.request({ type: 'ping', timeUs: Math.round(t0 * 1000) }, options);
    return performance.now() - t0;
  }

  /** Ends the session: stops pings and reconnects, rejects pending requests with EW_LINK_CLOSED, closes the transport. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stopTimers();
    this.#rejectAll(linkError('EW_LINK_CLOSED', 'session closed'));
    await this.transport.close().catch(() => undefined);
    this.#link.detach();
    this.emit('close');
  }

  async #connect(): Promise<HelloInfo> {
    this.#link.resetReceiver();
    if (!this.transport.isOpen) await this.transport.open();
    let answer: LinkMessage;
    try {
      answer = await this.#request(
        { type: 'helloRequest', protocolVersion: this.#opts.protocolVersion },
        this.#opts.helloTimeoutMs,
        this.#opts.helloRetries,
      );
    } catch (err) {
      if (isEdgewardenError(err, 'EW_LINK_TIMEOUT'))
        throw linkError('EW_LINK_HANDSHAKE', `no Hello from ${this.transport.description}`, err.details as never, err);
      throw err;
    }
    if (answer.body.type !== 'hello') throw linkError('EW_LINK_HANDSHAKE', 'answer to HelloRequest is not Hello');
    const { type: _t, ...hello } = answer.body;
    this.#checkVersion(hello);
    this.#hello = hello;
    return hello;
  }

  #checkVersion(hello: HelloInfo): void {
    if (hello.protocolVersion === this.#opts.protocolVersion) return;
    throw linkError(
      'EW_LINK_PROTOCOL_VERSION',
      `firmware ${hello.firmwareName} ${hello.firmwareVersion} speaks link protocol v${hello.protocolVersion}, ` +
        `this host speaks v${this.#opts.protocolVersion}: update the firmware or the SDK so that both match`,
      { device: hello.protocolVersion, host: this.#opts.protocolVersion, firmware: hello.firmwareName },
    );
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0xffffffff ? 1 : this.#seq + 1;
    return this.#seq;
  }

  #request(body: LinkBody, timeoutMs: number, retries: number): Promise<LinkMessage> {
    const seq = this.#nextSeq();
    const msg: LinkMessage = { seq, body };
    this.#counters.requests++;
    return new Promise<LinkMessage>((resolve, reject) => {
      const p: Pending = { type: body.type, accepts: ANSWERS[body.type] ?? ['ack', 'nack'], resolve, reject };
      let attempt = 0;
      const send = () => {
        attempt++;
        this.#link.send(msg, this.peerMaxPayload).catch((err) => {
          this.#pending.delete(seq);
          clearTimeout(p.timer);
          reject(err);
        });
        p.timer = setTimeout(() => {
          if (this.#pending.get(seq) !== p) return;
          if (attempt <= retries) {
            this.#counters.retries++;
            send();
            return;
          }
          this.#pending.delete(seq);
          this.#counters.timeouts++;
          reject(
            linkError('EW_LINK_TIMEOUT', `no answer to ${body.type} (seq ${seq}) after ${attempt} attempt(s)`, {
              seq,
              request: body.type,
              attempts: attempt,
              timeoutMs,
            }),
          );
        }, timeoutMs);
      };
      this.#pending.set(seq, p);
      send();
    });
  }

  #onMessage(msg: LinkMessage): void {
    this.#heardSinceTick = true;
    this.#missedPings = 0;
    this.emit('message', msg);
    const b = msg.body;
    switch (b.type) {
      case 'ack':
      case 'nack':
        this.#answer(b.ackSeq || msg.seq, msg);
        return;
      case 'pong':
        this.#answer(msg.seq, msg, true);
        return;
      case 'hello':
        if (msg.seq !== 0 && this.#pending.has(msg.seq)) {
          this.#answer(msg.seq, msg);
          return;
        }
        if (msg.seq !== 0) return;
        // A device that boots while we wait for its Hello may have missed our request: its boot
        // Hello answers the handshake just as well.
        for (const [seq, p] of this.#pending)
          if (p.type === 'helloRequest') {
            this.#answer(seq, msg);
            return;
          }
        if (this.#state === 'open') this.#onDeviceReset(b);
        return;
      case 'sensorBatch': {
        const { type: _t, ...batch } = b;
        this.emit('sensorBatch', batch);
        return;
      }
      case 'log':
        this.emit('log', { level: b.level, text: b.text });
        return;
      case 'ping':
        // The device checks on us: answer at once with the same seq and time.
        if (this.transport.isOpen)
          this.#link.send({ seq: msg.seq, body: { type: 'pong', timeUs: b.timeUs } }).catch(() => undefined);
        return;
      case 'helloRequest':
      case 'command':
      case 'result':
        // This host takes no requests of these kinds.
        if (this.transport.isOpen && msg.seq !== 0)
          this.#link
            .send({
              seq: msg.seq,
              body: {
                type: 'nack',
                ackSeq: msg.seq,
                reason: NackReason.UNSUPPORTED,
                detail: `host does not take ${b.type}`,
              },
            })
            .catch(() => undefined);
        return;
    }
  }

  #answer(seq: number, msg: LinkMessage, quietIfUnknown = false): void {
    const p = this.#pending.get(seq);
    if (!p) {
      if (!quietIfUnknown) this.#counters.staleAnswers++;
      return;
    }
    this.#pending.delete(seq);
    clearTimeout(p.timer);
    const b = msg.body;
    if (b.type === 'nack') {
      this.#counters.nacks++;
      const name = nackReasonName(b.reason);
      p.reject(
        linkError('EW_LINK_NACK', `device refused ${p.type} (seq ${seq}): ${name}${b.detail ? `: ${b.detail}` : ''}`, {
          seq,
          request: p.type,
          reason: b.reason,
          reasonName: name,
          detail: b.detail,
        }),
      );
      return;
    }
    if (!p.accepts.includes(b.type)) {
      p.reject(linkError('EW_LINK_UNEXPECTED_ANSWER', `${p.type} (seq ${seq}) answered with ${b.type}`, { seq }));
      return;
    }
    p.resolve(msg);
  }

  #onDeviceReset(hello: HelloInfo & { type: 'hello' }): void {
    const { type: _t, ...info } = hello;
    try {
      this.#checkVersion(info);
    } catch (err) {
      this.#lost('protocol', err as Error);
      return;
    }
    this.#hello = info;
    this.emit('hello', info, { reset: true });
  }

  #startPinger(): void {
    if (this.#opts.pingIntervalMs <= 0) return;
    this.#heardSinceTick = false;
    this.#missedPings = 0;
    this.#pinger = setInterval(() => this.#tick(), this.#opts.pingIntervalMs);
  }

  #tick(): void {
    if (this.#state !== 'open') return;
    if (this.#heardSinceTick) {
      this.#heardSinceTick = false;
      this.#missedPings = 0;
      return;
    }
    if (this.#missedPings >= this.#opts.maxMissedPings) {
      this.#lost(
        'silent',
        linkError('EW_LINK_DISCONNECTED', `no answer to ${this.#missedPings} pings: the device is silent`, {
          missedPings: this.#missedPings,
        }),
      );
      return;
    }
    this.#missedPings++;
    this.#counters.pingsSent++;
    // A liveness ping is not a pending request: any frame from the peer proves it alive.
    this.#link
      .send({ seq: this.#nextSeq(), body: { type: 'ping', timeUs: Math.round(performance.now() * 1000) } })
      .catch(() => undefined);
  }

  #onTransportClose(err?: Error): void {
    if (this.#state === 'open')
      this.#lost('lost', err ?? linkError('EW_LINK_DISCONNECTED', `${this.transport.description} closed`));
    else if (this.#state === 'connecting' || this.#state === 'reconnecting')
      this.#rejectAll(linkError('EW_LINK_DISCONNECTED', `${this.transport.description} closed`, {}, err));
  }

  #lost(reason: DisconnectReason, error: Error): void {
    if (this.#state !== 'open') return;
    this.#stopTimers();
    this.#lostAt = Date.now();
    this.#rejectAll(linkError('EW_LINK_DISCONNECTED', `link lost (${reason}): ${error.message}`, { reason }, error));
    this.#state = this.#opts.reconnect === false ? 'closed' : 'reconnecting';
    this.emit('disconnect', { reason, error });
    void this.transport.close().catch(() => undefined);
    if (this.#opts.reconnect === false) {
      this.#link.detach();
      this.emit('close');
      return;
    }
    this.#scheduleReconnect(0);
  }

  #scheduleReconnect(attempt: number): void {
    const rc = this.#opts.reconnect;
    if (rc === false || this.#state !== 'reconnecting') return;
    const base = Math.min(rc.maxDelayMs, rc.initialDelayMs * rc.factor ** attempt);
    const delay = Math.max(0, Math.round(base * (1 + rc.jitter * (2 * rc.random() - 1))));
    this.#reconnectTimer = setTimeout(() => void this.#tryReconnect(attempt + 1), delay);
  }

  async #tryReconnect(attempt: number): Promise<void> {
    if (this.#state !== 'reconnecting') return;
    try {
      const hello = await this.#connect();
      if (this.#state !== 'reconnecting') {
        // close() came while we were reopening: do not leave the port open behind it.
        await this.transport.close().catch(() => undefined);
        return;
      }
      this.#state = 'open';
      this.#counters.reconnects++;
      this.#startPinger();
      this.emit('hello', hello, { reset: false });
      this.emit('reconnect', { attempts: attempt, downtimeMs: Date.now() - this.#lostAt, hello });
    } catch (err) {
      await this.transport.close().catch(() => undefined);
      if (this.#state !== 'reconnecting') return;
      const rc = this.#opts.reconnect as Required<ReconnectOptions>;
      const nextDelayMs = Math.min(rc.maxDelayMs, rc.initialDelayMs * rc.factor ** attempt);
      this.emit('reconnectFailed', { attempt, error: err as Error, nextDelayMs });
      this.#scheduleReconnect(attempt);
    }
  }

  #rejectAll(err: Error): void {
    for (const [seq, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(seq);
      p.reject(err);
    }
  }

  #stopTimers(): void {
    clearInterval(this.#pinger);
    this.#pinger = undefined;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }
}
