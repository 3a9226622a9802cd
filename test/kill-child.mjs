// Child of test/kill.test.ts: signed inferences in a loop with durability 'always', until SIGKILL.
// Prints "ready", then one line per resolved bundle: the record's leaf hash (hex), so the parent
// can check that every record whose bundle resolved survived the kill.
import { createHash } from 'node:crypto';

const { createWarden } = await import(process.env.EW_MODULE);
const mode = process.env.EW_MODE;
const warden = await createWarden({
  home: process.env.EW_HOME,
  mode,
  durability: 'always',
  checkpointEvery: 4,
  checkpointMs: 20,
});
const model = await warden.load(process.env.EW_MODEL);
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const { provenance } = await model.infer({
    a: { dtype: 'float32', dims: [1, 3], data: [i, 1, 2] },
    b: { dtype: 'float32', dims: [1, 3], data: [4, 5, i] },
  });
  provenance.then((bundle) => {
    const leaf = createHash('sha256')
      .update(Buffer.from([0]))
      .update(bundle.record.payload)
      .digest('hex');
    process.stdout.write(`${leaf}\n`);
  });
}
