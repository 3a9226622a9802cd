// A device process for the kill test: publishes `count` heartbeats through Telemetry, prints
// "queued <seq>" after each, and keeps running (connected or not) until killed or told to exit.
// argv: dir keyFile brokerUrl count
import { loadKeyFileSigner } from '../../provenance/keys';
import { Telemetry } from '../telemetry';

const [dir, keyFile, url, countArg] = process.argv.slice(2) as [string, string, string, string];
const signer = await loadKeyFileSigner(keyFile);
const t = await Telemetry.start({
  dir,
  signer,
  fleet: 'kill',
  brokers: [{ url, name: 'b' }],
  outbox: { maxEntries: 10_000, durability: 'none' },
  backoff: { initialMs: 10, maxMs: 100 },
  receiptTimeoutMs: 300,
  drain: { ratePerS: 500, burst: 50 },
});
const recovery = (t.publishers[0] as unknown as { recovery: unknown }).recovery;
process.stdout.write(`start ${t.nextSeq} ${JSON.stringify(recovery)}\n`);
for (let i = 0; i < Number(countArg); i++) {
  const seq = await t.publish({ compliance: { state: 'compliant', reasons: [] } });
  process.stdout.write(`queued ${seq}\n`);
}
process.stdout.write('done\n');
const timer = setInterval(() => {
  const s = t.stats()[0]!;
  process.stdout.write(`depth ${s.outboxDepth}\n`);
}, 50);
process.on('SIGTERM', () => {
  clearInterval(timer);
  void t.close().then(() => process.exit(0));
});
