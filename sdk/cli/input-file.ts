import { readFile } from 'node:fs/promises';
import type { TensorMap, TensorView } from '../engine/tensor';
import { tensorsFromJson } from '../engine/tensor-json';
import { EdgewardenError } from '../errors';
import { parseNpy } from './npy';

function bad(where: string, why: string, input?: string): never {
  throw new EdgewardenError('EW_CLI_INPUT', `${where}: ${why}`, { details: input ? { input } : {} });
}

/**
 * Reads `--input` arguments: each is a JSON file of named tensors or `name=path.npy`. Later
 * arguments may add tensors; a name given twice is refused.
 */
export async function readInputs(specs: readonly string[]): Promise<TensorMap> {
  if (specs.length === 0) bad('--input', 'give at least one input file (JSON, or name=path.npy)');
  const out: TensorMap = Object.create(null);
  const put = (name: string, t: TensorView, where: string) => {
    if (name in out) bad(where, `input ${JSON.stringify(name)} is given twice`, name);
    out[name] = t;
  };
  for (const spec of specs) {
    const npy = /^([^=]+)=(.+\.npy)$/i.exec(spec);
    if (npy) {
      const [, name, path] = npy as unknown as [string, string, string];
      put(name, parseNpy(await readOrFail(path), path), path);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse((await readOrFail(spec)).toString('utf8'));
    } catch (cause) {
      if (cause instanceof EdgewardenError) throw cause;
      throw new EdgewardenError('EW_CLI_INPUT', `${spec}: not valid JSON (${(cause as Error).message})`, { cause });
    }
    for (const [name, t] of Object.entries(tensorsFromJson(parsed, spec))) put(name, t, spec);
  }
  return out;
}

async function readOrFail(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new EdgewardenError(
      'EW_CLI_INPUT',
      `cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`,
      {
        cause,
        details: { path },
      },
    );
  }
}
