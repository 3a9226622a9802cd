import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MOSQUITTO_MISSING,
  MOSQUITTO_PASSWD_BIN,
  makeTestPki,
  OPENSSL_BIN,
  startMosquitto,
} from '../../test/mosquitto';
import { deviceIdOf, KeySigner } from '../provenance/keys';
import { connectMqtt, type MqttMessage } from './mqtt-client';
import { MqttPublisher, type MqttPublisherOptions } from './mqtt-publisher';
import { MiniCollector } from './testkit/mini-collector';
import { deviceTopic } from './topics';

if (MOSQUITTO_MISSING) console.warn(`skipping Mosquitto tests: ${MOSQUITTO_MISSING}`);
const NO_PASSWD = MOSQUITTO_MISSING ?? (MOSQUITTO_PASSWD_BIN ? undefined : 'mosquitto_passwd not found');
const NO_TLS = MOSQUITTO_MISSING ?? (OPENSSL_BIN ? undefined : 'openssl CLI not found');
if (!MOSQUITTO_MISSING && NO_PASSWD) console.warn(`skipping the ACL test: ${NO_PASSWD}`);
if (!MOSQUITTO_MISSING && NO_TLS) console.warn(`skipping the TLS test: ${NO_TLS}`);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ew-mq-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function publisher(o: Partial<MqttPublisherOptions> & { url: string; signer: KeySigner }) {
  const p = await MqttPublisher.start({ fleet: 'lab', bootId: new Uint8Array(16), dir: tmp(), ...o });
  cleanup.push(() => p.close());
  return p;
}

const beat = (s: KeySigner, seq: number) => ({
  deviceKeyid: new Uint8Array(s.keyId),
  fleet: 'lab',
  bdSeq: 0,
  seq,
  timeUnixMs: Date.now(),
  bootId: new Uint8Array(16),
});

// A Mosquitto already running on 127.0.0.1:1883 (as on the CI machines): used as is, never reconfigured.
const SYSTEM_BROKER = 'mqtt://127.0.0.1:1883';
const systemBroker = await connectMqtt(SYSTEM_BROKER, { timeoutMs: 1000 }).then(
  async (c) => {
    await c.end();
    return true;
  },
  () => false,
);
if (!systemBroker) console.warn('skipping the system Mosquitto test: nothing answers on 127.0.0.1:1883');

describe.skipIf(!systemBroker)('against the Mosquitto on 127.0.0.1:1883', () => {
  it('birth, heartbeats with receipts, will with matching bd_seq; retained messages cleared after', async () => {
    const dev = KeySigner.generate();
    const fleet = `t${process.pid}x${Date.now().toString(36)}`;
    const col = await MiniCollector.start(SYSTEM_BROKER, { devices: [dev] });
    cleanup.push(() => col.close());
    const p = await publisher({ url: SYSTEM_BROKER, signer: dev, fleet });
    cleanup.push(async () => {
      // Leave nothing retained behind on a shared broker.
      for (const kind of ['birth', 'death'] as const) {
        await col.client.publish(deviceTopic(fleet, p.deviceId, kind), new Uint8Array(0), { retain: true });
      }
    });
    for (let s = 1; s <= 5; s++) await p.publish({ ...beat(dev, s), fleet });
    await col.until(() => col.seqs(p.deviceId).length === 5 && p.stats().outboxDepth === 0, 10_000, 'receipts');
    await p.close({ abrupt: true });
    await col.until(() => col.deaths.some((d) => d.fleet === fleet), 10_000, 'will');
    const birth = col.births.find((b) => b.fleet === fleet)!;
    expect(col.deaths.find((d) => d.fleet === fleet)).toMatchObject({ bdSeq: birth.bdSeq, clean: false });
  });
});

describe.skipIf(!!MOSQUITTO_MISSING)('against a private Mosquitto', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: birth, heartbeats with receipts, will with matching bd_seq`, async () => {
      const m = await startMosquitto();
      cleanup.push(() => m.stop());
      const dev = KeySigner.generate();
      const col = await MiniCollector.start(m.url, { devices: [dev], mqtt: { protocolVersion } });
      cleanup.push(() => col.close());
      const p = await publisher({ url: m.url, signer: dev, mqtt: { protocolVersion, backoff: { initialMs: 20 } } });
      for (let s = 1; s <= 5; s++) await p.publish(beat(dev, s));
      await col.until(() => col.seqs(p.deviceId).length === 5 && p.stats().outboxDepth === 0, 10_000, 'receipts');
      expect(col.births[0]!.bdSeq).toBe(p.currentBdSeq);
      await p.close({ abrupt: true });
      await col.until(() => col.deaths.length === 1, 10_000, 'will');
      expect(col.deaths[0]).toMatchObject({ bdSeq: col.births[0]!.bdSeq, clean: false });
    });
  }

  it.skipIf(!!NO_PASSWD)(
    'per-device credentials and an ACL pattern: device A cannot publish into device B’s topics',
    async () => {
      const a = KeySigner.generate();
      const b = KeySigner.generate();
      const [ida, idb] = [deviceIdOf(a.keyId), deviceIdOf(b.keyId)];
      const m = await startMosquitto({
        users: { [ida]: 'pa', [idb]: 'pb', collector: 'pc' },
        acl: ['user collector', 'topic readwrite ew/v1/#', '', 'pattern readwrite ew/v1/+/%u/#', ''].join('\n'),
      });
      cleanup.push(() => m.stop());
      const col = await MiniCollector.start(m.url, {
        devices: [a, b],
        mqtt: { username: 'collector', password: 'pc' },
      });
      cleanup.push(() => col.close());
      const seenB: MqttMessage[] = [];
      col.client.on('message', (msg) => {
        if (msg.topic.includes(idb)) seenB.push(msg);
      });
      // Device A's own publisher works with its credentials.
      const pa = await publisher({ url: m.url, signer: a, mqtt: { username: ida, password: 'pa' } });
      await pa.publish(beat(a, 1));
      await col.until(() => col.seqs(ida).length === 1, 10_000, 'A heartbeat');
      // A, with its own credentials, tries B's heartbeat and birth topics, then its own topic as a marker.
      const rogue = await connectMqtt(m.url, { username: ida, password: 'pa', clientId: 'rogue-a' });
      cleanup.push(() => rogue.end());
      await rogue.publish(deviceTopic('lab', idb, 'hb'), new Uint8Array([1, 2, 3]));
      await rogue.publish(deviceTopic('lab', idb, 'birth'), new Uint8Array([4]), { retain: true });
      const marker = new Promise<void>((resolve) =>
        col.client.on('message', (msg) => msg.topic === deviceTopic('lab', ida, 'ckpt') && resolve()),
      );
      await col.client.subscribe(deviceTopic('lab', ida, 'ckpt'));
      await rogue.publish(deviceTopic('lab', ida, 'ckpt'), new Uint8Array([9]));
      await marker;
      expect(seenB).toEqual([]);
      expect(col.seqs(idb)).toEqual([]);
      // A wrong password is refused.
      await expect(connectMqtt(m.url, { username: idb, password: 'pa', timeoutMs: 1500 })).rejects.toMatchObject({
        code: 'EW_TELEMETRY_CONNECT',
      });
    },
  );

  it.skipIf(!!NO_TLS)('TLS with a self-generated CA and client certificates', async () => {
    const pki = makeTestPki(tmp());
    const m = await startMosquitto({ tls: { ...pki, requireCertificate: true } });
    cleanup.push(() => m.stop());
    const dev = KeySigner.generate();
    const tls = {
      ca: readFileSync(pki.caFile, 'utf8'),
      cert: readFileSync(pki.clientCertFile, 'utf8'),
      key: readFileSync(pki.clientKeyFile, 'utf8'),
    };
    const col = await MiniCollector.start(m.tlsUrl!, { devices: [dev], mqtt: tls });
    cleanup.push(() => col.close());
    const p = await publisher({ url: m.tlsUrl!, signer: dev, mqtt: { ...tls, backoff: { initialMs: 20 } } });
    await p.publish(beat(dev, 1));
    await col.until(() => col.seqs(p.deviceId).length === 1 && p.stats().outboxDepth === 0, 10_000, 'TLS heartbeat');
    // Without the CA the server certificate is refused; without a client certificate the broker refuses.
    await expect(connectMqtt(m.tlsUrl!, { timeoutMs: 1500 })).rejects.toMatchObject({ code: 'EW_TELEMETRY_CONNECT' });
    await expect(connectMqtt(m.tlsUrl!, { ca: tls.ca, timeoutMs: 1500 })).rejects.toMatchObject({
      code: 'EW_TELEMETRY_CONNECT',
    });
  });
});
