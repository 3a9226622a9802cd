import { EventEmitter } from 'node:events';
import type { IClientOptions, MqttClient as RawMqttClient } from 'mqtt';
import { EdgewardenError } from '../errors';
import { type Backoff, type BackoffOptions, createBackoff, SYSTEM_TIMERS, type Timers } from './backoff';

// mqtt.js takes a noticeable part of a cold start: load it with the first connection, not at import.
let mqttModule: Promise<typeof import('mqtt')> | undefined;
const loadMqtt = () => (mqttModule ??= import('mqtt'));

/** The MQTT last will, registered with the broker in every CONNECT. */
export interface MqttWill {
  topic: string;
  payload: Uint8Array;
  qos?: 0 | 1;
  retain?: boolean;
}

/** Options of {@link createMqttClient} / {@link connectMqtt}. */
export interface MqttClientOptions {
  clientId?: string;
  /** 4 = MQTT 3.1.1 (default: every broker speaks it, aedes only this), 5 = MQTT 5. */
  protocolVersion?: 4 | 5;
  /** Clean session (default true). */
  clean?: boolean;
  keepaliveS?: number;
  username?: string;
  password?: string | Uint8Array;
  /** TLS material (PEM text or bytes) for `mqtts://` URLs. */
  ca?: string | Uint8Array;
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  /** Default true; only turn off in tests. */
  rejectUnauthorized?: boolean;
  servername?: string;
  /**
   * The will, or a function called before EVERY connection attempt (the publisher uses it to bump
   * and persist bd_seq and pre-sign the matching death). Returning undefined sends no will.
   */
  will?: MqttWill | (() => MqttWill | undefined | Promise<MqttWill | undefined>);
  /** How long one attempt may wait for CONNACK (default 10 s). */
  connectTimeoutMs?: number;
  /** Reconnect backoff (exponential with jitter); mqtt.js's own fixed reconnect is never used. */
  backoff?: BackoffOptions;
  /** Randomness for jitter (tests inject a fixed one). */
  random?: () => number;
  /** Timers for the backoff (tests inject fake ones). */
  timers?: Timers;
}

/** A received message. */
export interface MqttMessage {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  qos: number;
}

/** Events of {@link MqttClient}. */
export interface MqttClientEvents {
  connect: [{ sessionPresent: boolean; attempt: number }];
  close: [];
  message: [MqttMessage];
  error: [EdgewardenError];
  reconnecting: [{ delayMs: number; attempt: number }];
}

const URL_SCHEMES = new Set(['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:']);

function toBuffer(v: string | Uint8Array | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

interface Pending {
  reject(e: Error): void;
}

/**
 * A thin MQTT client over mqtt.js (the only importer of `mqtt` in edgewarden). Connects in the
 * background, reconnects with exponential backoff and jitter, re-subscribes after every connect,
 * evaluates the will per attempt, and never queues publishes while offline (the caller's durable
 * outbox owns retries): `publish` rejects with `EW_TELEMETRY_NOT_CONNECTED` instead.
 */
export class MqttClient extends EventEmitter<MqttClientEvents> {
  readonly url: string;
  private readonly opts: MqttClientOptions;
  private readonly backoff: Backoff;
  private readonly timers: Timers;
  private readonly subs = new Map<string, 0 | 1>();
  private raw: RawMqttClient | undefined;
  private pending = new Set<Pending>();
  private timer: unknown;
  private closed = false;
  private attempt = 0;
  private _connected = false;

  constructor(url: string, opts: MqttClientOptions = {}) {
    super();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (cause) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `broker URL ${JSON.stringify(url)} does not parse`, { cause });
    }
    if (!URL_SCHEMES.has(parsed.protocol)) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', `broker URL scheme ${parsed.protocol} is not mqtt: or mqtts:`);
    }
    if (opts.protocolVersion !== undefined && opts.protocolVersion !== 4 && opts.protocolVersion !== 5) {
      throw new EdgewardenError('EW_TELEMETRY_OPTIONS', 'protocolVersion must be 4 (MQTT 3.1.1) or 5');
    }
    this.url = url;
    this.opts = opts;
    this.timers = opts.timers ?? SYSTEM_TIMERS;
    this.backoff = createBackoff(opts.backoff, opts.random ?? Math.random);
    // An 'error' event without a listener would throw; errors are informational here (we reconnect).
    this.on('error', () => {});
    void this.connectOnce();
  }

  /** True while a connection is up (CONNACK received, not yet closed). */
  get connected(): boolean {
    return this._connected;
  }

  /** Resolves at the next (or current) connection; rejects with `EW_TELEMETRY_CONNECT` after `timeoutMs`. */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    if (this._connected) return Promise.resolve();
    if (this.closed) return Promise.reject(new EdgewardenError('EW_TELEMETRY_CLOSED', 'client closed'));
    return new Promise((resolve, reject) => {
      let lastError: EdgewardenError | undefined;
      const onErr = (e: EdgewardenError) => {
        lastError = e;
        // A refusal that retrying cannot fix (credentials, authorization, certificate): fail now.
        if (e.details.permanent) {
          done();
          reject(e);
        }
      };
      const done = () => {
        this.timers.clearTimeout(t);
        this.off('connect', onConnect);
        this.off('error', onErr);
      };
      const onConnect = () => {
        done();
        resolve();
      };
      const t = this.timers.setTimeout(() => {
        done();
        reject(
          new EdgewardenError('EW_TELEMETRY_CONNECT', `no connection to ${this.url} within ${timeoutMs} ms`, {
            cause: lastError,
            details: { reasonCode: lastError?.details.reasonCode },
          }),
        );
      }, timeoutMs);
      this.on('connect', onConnect);
      this.on('error', onErr);
    });
  }

  /** Publishes and resolves on PUBACK (QoS 1, the default) or when written (QoS 0). */
  publish(topic: string, payload: Uint8Array, o: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const raw = this.raw;
    if (this.closed) return Promise.reject(new EdgewardenError('EW_TELEMETRY_CLOSED', 'client closed'));
    if (!raw || !this._connected) {
      return Promise.reject(new EdgewardenError('EW_TELEMETRY_NOT_CONNECTED', `not connected to ${this.url}`));
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { reject };
      this.pending.add(p);
      raw.publish(topic, toBuffer(payload)!, { qos: o.qos ?? 1, retain: o.retain ?? false }, (err) => {
        if (!this.pending.delete(p)) return;
        if (err)
          reject(new EdgewardenError('EW_TELEMETRY_NOT_CONNECTED', `publish failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  /** Subscribes now (when connected) and again after every reconnect. */
  async subscribe(filters: string | string[], o: { qos?: 0 | 1 } = {}): Promise<void> {
    const list = Array.isArray(filters) ? filters : [filters];
    for (const f of list) this.subs.set(f, o.qos ?? 1);
    const raw = this.raw;
    if (raw && this._connected) await this.subscribeRaw(raw, list, o.qos ?? 1);
  }

  /** Stops re-subscribing `filters` and unsubscribes when connected. */
  async unsubscribe(filters: string | string[]): Promise<void> {
    const list = Array.isArray(filters) ? filters : [filters];
    for (const f of list) this.subs.delete(f);
    const raw = this.raw;
    if (!raw || !this._connected) return;
    await new Promise<void>((resolve) => raw.unsubscribe(list, () => resolve()));
  }

  /**
   * Closes for good. Default: a clean DISCONNECT (the broker discards the will). `abrupt: true`
   * destroys the socket without DISCONNECT, so the broker publishes the will (used by tests).
   */
  async end(o: { abrupt?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    const raw = this.raw;
    const wasConnected = this._connected;
    this.raw = undefined;
    this._connected = false;
    this.failPending('client closed');
    if (!raw) return;
    if (o.abrupt || !wasConnected) {
      raw.stream?.destroy();
      await new Promise<void>((resolve) => raw.end(true, {}, () => resolve()));
      return;
    }
    // A clean DISCONNECT waits for unacknowledged publishes; a broker that stopped answering must
    // not hang close(), so the socket is dropped after a grace period.
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        raw.stream?.destroy();
        resolve();
      }, 2000);
      t.unref();
      raw.end(false, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private async subscribeRaw(raw: RawMqttClient, list: string[], qos: 0 | 1): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      raw.subscribe(list, { qos }, (err, granted) => {
        if (err) return reject(new EdgewardenError('EW_TELEMETRY_NOT_CONNECTED', `subscribe failed: ${err.message}`));
        const refused = (granted ?? []).filter((g) => g.qos >= 0x80);
        if (refused.length > 0) {
          return reject(
            new EdgewardenError(
              'EW_TELEMETRY_CONNECT',
              `subscription refused: ${refused.map((g) => g.topic).join(', ')}`,
              {
                details: { reasonCode: refused[0]!.qos },
              },
            ),
          );
        }
        resolve();
      });
    });
  }

  private failPending(why: string): void {
    const list = [...this.pending];
    this.pending.clear();
    for (const p of list) p.reject(new EdgewardenError('EW_TELEMETRY_NOT_CONNECTED', why));
  }

  private async connectOnce(): Promise<void> {
    if (this.closed) return;
    this.attempt++;
    const attempt = this.attempt;
    let will: MqttWill | undefined;
    try {
      will = typeof this.opts.will === 'function' ? await this.opts.will() : this.opts.will;
    } catch (cause) {
      this.emit('error', new EdgewardenError('EW_TELEMETRY_CONNECT', 'preparing the will failed', { cause }));
      this.schedule();
      return;
    }
    const mqtt = (await loadMqtt()).default;
    if (this.closed) return;
    const o = this.opts;
    const options: IClientOptions = {
      protocolVersion: o.protocolVersion ?? 4,
      clean: o.clean ?? true,
      keepalive: o.keepaliveS ?? 30,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      queueQoSZero: false,
      resubscribe: false,
    };
    if (o.clientId !== undefined) options.clientId = o.clientId;
    if (o.username !== undefined) options.username = o.username;
    if (o.password !== undefined) options.password = toBuffer(o.password)!;
    if (o.ca !== undefined) options.ca = toBuffer(o.ca)!;
    if (o.cert !== undefined) options.cert = toBuffer(o.cert)!;
    if (o.key !== undefined) options.key = toBuffer(o.key)!;
    if (o.rejectUnauthorized !== undefined) options.rejectUnauthorized = o.rejectUnauthorized;
    if (o.servername !== undefined) options.servername = o.servername;
    if (will) {
      options.will = {
        topic: will.topic,
        payload: toBuffer(will.payload)!,
        qos: will.qos ?? 1,
        retain: will.retain ?? false,
      };
    }
    let raw: RawMqttClient;
    try {
      raw = mqtt.connect(this.url, options);
    } catch (cause) {
      this.emit('error', new EdgewardenError('EW_TELEMETRY_CONNECT', `cannot connect to ${this.url}`, { cause }));
      this.schedule();
      return;
    }
    this.raw = raw;
    raw.on('connect', (connack) => {
      if (this.raw !== raw) return;
      this._connected = true;
      this.backoff.reset();
      const filters = [...this.subs.entries()];
      const byQos = [0, 1].map((q) => filters.filter(([, qq]) => qq === q).map(([f]) => f));
      Promise.all(byQos.map((l, q) => (l.length ? this.subscribeRaw(raw, l, q as 0 | 1) : Promise.resolve())))
        .catch((e: unknown) => {
          if (e instanceof EdgewardenError) this.emit('error', e);
        })
        .finally(() => {
          if (this.raw === raw && this._connected) {
            this.emit('connect', { sessionPresent: connack.sessionPresent, attempt });
          }
        });
    });
    raw.on('message', (topic, payload, packet) => {
      if (this.raw !== raw) return;
      this.emit('message', { topic, payload, retain: packet.retain, qos: packet.qos });
    });
    raw.on('error', (err: Error & { code?: number | string }) => {
      if (this.raw !== raw) return;
      const permanent = !this._connected && isPermanent(err.code);
      this.emit(
        'error',
        new EdgewardenError('EW_TELEMETRY_CONNECT', `${this.url}: ${err.message}`, {
          cause: err,
          details: { reasonCode: err.code, permanent },
        }),
      );
    });
    raw.on('close', () => {
      if (this.raw !== raw) return;
      const was = this._connected;
      this.raw = undefined;
      this._connected = false;
      this.failPending('connection closed');
      raw.end(true);
      if (was) this.emit('close');
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined) return;
    const delayMs = this.backoff.next();
    this.emit('reconnecting', { delayMs, attempt: this.attempt + 1 });
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.connectOnce();
    }, delayMs);
  }
}

// CONNACK refusals (3.1.1: 2 identifier rejected, 4 bad user name or password, 5 not authorized;
// MQTT 5: 0x85, 0x86, 0x87, 0x8c) and certificate errors: the same attempt will fail again.
const PERMANENT_CODES = new Set<number | string>([
  2,
  4,
  5,
  0x85,
  0x86,
  0x87,
  0x8c,
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function isPermanent(code: number | string | undefined): boolean {
  return code !== undefined && PERMANENT_CODES.has(code);
}

/** Creates a client that connects in the background and keeps reconnecting until `end()`. */
export function createMqttClient(url: string, opts: MqttClientOptions = {}): MqttClient {
  return new MqttClient(url, opts);
}

/**
 * Creates a client and waits for its first connection. Rejects with `EW_TELEMETRY_CONNECT` after
 * `timeoutMs` (default 10 s), or at once when the broker refuses the credentials or the TLS
 * certificate does not verify (`details.permanent`); the client is then closed.
 */
export async function connectMqtt(
  url: string,
  opts: MqttClientOptions & { timeoutMs?: number } = {},
): Promise<MqttClient> {
  const client = new MqttClient(url, opts);
  try {
    await client.waitConnected(opts.timeoutMs ?? 10_000);
  } catch (e) {
    await client.end();
    throw e;
  }
  return client;
}

export type { Backoff, BackoffOptions, Timers };
