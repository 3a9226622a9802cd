import { EdgewardenError, isEdgewardenError } from '../errors';
import type { TensorMeta } from './backend';
import type { TensorInput, TensorMap, TensorView } from './tensor';
import { toTensorView } from './tensor';

function reject(input: string, reason: string, message: string, extra: Record<string, unknown> = {}): EdgewardenError {
  return new EdgewardenError('EW_ENGINE_INPUT', `input "${input}": ${message}`, {
    details: { input, reason, ...extra },
  });
}

function fmtDims(dims: readonly (number | string | null)[]): string {
  return `[${dims.map((d) => (typeof d === 'number' ? String(d) : d ? JSON.stringify(d) : '?')).join(', ')}]`;
}

// The declared input names of each metadata list, built once per model rather than per call.
const declaredNames = new WeakMap<readonly TensorMeta[], ReadonlySet<string>>();
// The map this module returned last and the metadata it was checked against: a backend handed
// exactly that map next (the warden checks, then runs, with nothing in between) does not check it
// again, ~2-10 µs per inference. One slot, used once: no table for the GC to walk, no property on
// the map.
let lastMap: TensorMap | undefined;
let lastMeta: readonly TensorMeta[] | undefined;

function namesOf(meta: readonly TensorMeta[]): ReadonlySet<string> {
  let names = declaredNames.get(meta);
  if (names === undefined) {
    names = new Set(meta.map((m) => m.name));
    declaredNames.set(meta, names);
  }
  return names;
}

/**
 * Checks named inputs against a model's declared inputs before the runtime sees them, and returns
 * them as {@link TensorView}s in the model's input order, in a frozen map. Given the map it returned
 * last, for the same `meta`, it returns that map at once (once): the views in it are the caller's
 * own objects, not copies, so they must not be changed between the check and the run.
 *
 * Rejected, each with `EW_ENGINE_INPUT` and `details.input` naming the input: a missing input, an
 * unknown input, a malformed tensor, a dtype other than the declared one, a rank other than the
 * declared one, a size other than a fixed dimension, and a named symbolic dimension ('batch') bound
 * to two different sizes across inputs. Symbolic dimensions accept any size ≥ 0; a scalar is rank 0.
 * Metadata the runtime did not expose (no dtype, no dims) is not checked.
 */
export function validateInputs(meta: readonly TensorMeta[], inputs: Record<string, TensorInput>): TensorMap {
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw new EdgewardenError('EW_ENGINE_INPUT', 'inputs must be an object mapping input names to tensors', {
      details: { input: '', reason: 'shape' },
    });
  }
  if (lastMap !== undefined) {
    const trusted = lastMap === inputs && lastMeta === meta;
    lastMap = undefined;
    lastMeta = undefined;
    if (trusted) return inputs as TensorMap;
  }
  const declared = namesOf(meta);
  for (const name of Object.keys(inputs)) {
    if (!declared.has(name)) {
      const expected = meta.map((m) => m.name);
      throw reject(name, 'unknown', `not an input of this model (inputs: ${expected.join(', ')})`, { expected });
    }
  }
  const out: TensorMap = {};
  let bound: Map<string, { size: number; input: string }> | undefined;
  for (const m of meta) {
    const given = Object.hasOwn(inputs, m.name) ? inputs[m.name] : undefined;
    if (given === undefined || given === null) throw reject(m.name, 'missing', 'missing');
    let view: TensorView;
    try {
      view = toTensorView(given);
    } catch (err) {
      if (!isEdgewardenError(err)) throw err;
      throw reject(m.name, String(err.details.reason ?? 'shape'), err.message, { cause: err.message });
    }
    if (m.dtype !== undefined && view.type !== m.dtype) {
      throw reject(m.name, 'dtype', `dtype ${view.type}, the model wants ${m.dtype}`, {
        expected: m.dtype,
        actual: view.type,
      });
    }
    if (m.dims !== undefined) {
      if (view.dims.length !== m.dims.length) {
        throw reject(
          m.name,
          'rank',
          `rank ${view.dims.length} ${fmtDims(view.dims)}, the model wants rank ${m.dims.length} ${fmtDims(m.dims)}`,
          { expected: [...m.dims], actual: [...view.dims] },
        );
      }
      for (let i = 0; i < m.dims.length; i++) {
        const want = m.dims[i];
        const got = view.dims[i]!;
        if (typeof want === 'number') {
          if (want >= 0 && got !== want) {
            throw reject(m.name, 'dim', `dimension ${i} is ${got}, the model wants ${want} ${fmtDims(m.dims)}`, {
              axis: i,
              expected: [...m.dims],
              actual: [...view.dims],
            });
          }
        } else if (typeof want === 'string' && want !== '') {
          // ONNX: one dim_param names one size across the whole graph's inputs.
          bound ??= new Map();
          const prior = bound.get(want);
          if (prior === undefined) bound.set(want, { size: got, input: m.name });
          else if (prior.size !== got) {
            throw reject(
              m.name,
              'dim',
              `dimension ${i} ("${want}") is ${got}, but input "${prior.input}" set "${want}" to ${prior.size}`,
              { axis: i, expected: prior.size, actual: got },
            );
          }
        }
      }
    }
    // A model may name an input '__proto__': that one is defined, not assigned (the fast path).
    if (m.name === '__proto__') Object.defineProperty(out, m.name, { value: view, enumerable: true });
    else out[m.name] = view;
  }
  Object.freeze(out);
  lastMap = out;
  lastMeta = meta;
  return out;
}
