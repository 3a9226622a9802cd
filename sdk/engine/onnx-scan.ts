import { EdgewardenError } from '../errors';

// A hand-written walk over the protobuf wire format of onnx.proto, reading only the fields that can
// hold a TensorProto (where external-data references live) and the graph inputs' shapes. Every other
// field, raw_data included, is skipped by its length without being decoded or copied. It replaced a
// protobufjs reflection schema: loading full protobufjs and decoding the whole model object graph
// cost ~30 ms of cold start; this walk takes well under a millisecond on the PaddleOCR classifier.

/** One tensor stored outside the model file. */
export interface ExternalDataRef {
  /** The tensor's name (may be empty). */
  readonly tensor: string;
  /** The `location` entry exactly as written in the model (a path relative to the model's folder). */
  readonly location: string;
}

/** What edgewarden needs to know about a model before a runtime opens it. */
export interface ModelScan {
  /** Every external-data reference, in model order (a file may appear several times). */
  readonly externalData: readonly ExternalDataRef[];
  /** The main graph's declared inputs, and whether each declares a shape (rank 0 included) at all. */
  readonly inputs: readonly { readonly name: string; readonly hasShape: boolean }[];
}

const EXTERNAL = 1;

// Message kinds the walk descends into.
const MODEL = 0;
const TRAINING_INFO = 1;
const FUNCTION = 2;
const GRAPH = 3;
const NODE = 4;
const ATTRIBUTE = 5;
const SPARSE = 6;
const TENSOR = 7;
const MAIN_GRAPH = 8; // the model's own graph: also lists inputs

// For each kind, the length-delimited fields that lead to a kind the walk cares about.
const CHILDREN: Record<number, Record<number, number>> = {
  [MODEL]: { 7: MAIN_GRAPH, 20: TRAINING_INFO, 25: FUNCTION },
  [TRAINING_INFO]: { 1: GRAPH, 2: GRAPH },
  [FUNCTION]: { 7: NODE },
  [GRAPH]: { 1: NODE, 5: TENSOR, 15: SPARSE },
  [MAIN_GRAPH]: { 1: NODE, 5: TENSOR, 15: SPARSE },
  [NODE]: { 5: ATTRIBUTE },
  [ATTRIBUTE]: { 5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE },
  [SPARSE]: { 1: TENSOR, 2: TENSOR },
};

// Without the bytes "location" anywhere in the file no tensor can name an external-data file (the
// key of that entry is stored as those bytes), so the walk may skip what only matters for external
// data inside nodes, functions and training graphs: it still checks the model's structure, the
// initializers (an external one without a location is refused) and the inputs. On the PaddleOCR
// classifier this is most of the 6-7 ms a first (not yet optimised) scan costs at a device's start.
const SHALLOW: Record<number, Record<number, number>> = {
  [MODEL]: { 7: MAIN_GRAPH },
  [MAIN_GRAPH]: { 5: TENSOR },
};
const LOCATION = Buffer.from('location', 'utf8');

const utf8 = new TextDecoder('utf-8');

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new EdgewardenError('EW_ENGINE_MODEL_INVALID', `not an ONNX model: ${message}`, details ? { details } : {});
}

/** A cursor over one message's bytes [pos, end) of the model. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) invalid('truncated varint');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    return invalid('varint longer than 10 bytes');
  }

  /** Reads a field key (tag); the field is `tag >>> 3`, the wire type `tag & 7`. */
  key(): number {
    // One-byte tags (fields 1-15) are the common case: no call into varint().
    const b = this.pos < this.end ? (this.buf[this.pos] as number) : 0x80;
    let tag: number;
    if (b < 0x80) {
      tag = b;
      this.pos++;
    } else tag = this.varint();
    if (tag < 8 || tag > 0xffffffff) invalid(`field number ${Math.floor(tag / 8)}`);
    return tag;
  }

  /** Reads a length prefix and returns the end of the bytes it covers. */
  lengthEnd(): number {
    const len = this.varint();
    const e = this.pos + len;
    if (e > this.end) invalid('a length runs past its message');
    return e;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 5) this.advance(4);
    else if (wire === 2) this.pos = this.lengthEnd();
    else invalid(`wire type ${wire}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) invalid('truncated field');
    this.pos += n;
  }

  string(): string {
    const e = this.lengthEnd();
    const s = utf8.decode(this.buf.subarray(this.pos, e));
    this.pos = e;
    return s;
  }
}

/** TensorProto: name (8), external_data (13: key 1, value 2), data_location (14). */
function scanTensor(r: Reader, out: ExternalDataRef[]): void {
  let nameStart = 0;
  let nameEnd = 0;
  let location: string | undefined;
  let external = false;
  while (r.pos < r.end) {
    const tag = r.key();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 8 && wire === 2) {
      nameEnd = r.lengthEnd();
      nameStart = r.pos;
      r.pos = nameEnd;
    } else if (field === 14 && wire === 0) external = r.varint() === EXTERNAL;
    else if (field === 13 && wire === 2) {
      const e = r.lengthEnd();
      const entry = new Reader(r.buf, r.pos, e);
      let key = '';
      let value: string | undefined;
      while (entry.pos < entry.end) {
        const t = entry.key();
        const f = t >>> 3;
        const w = t & 7;
        if (f === 1 && w === 2) key = entry.string();
        else if (f === 2 && w === 2) value = entry.string();
        else entry.skip(w);
      }
      r.pos = e;
      if (key === 'location') {
        // A location entry marks the tensor external; the last one wins, as protobuf merges.
        location = value ?? '';
        external = true;
      }
    } else r.skip(wire);
  }
  if (!external) return;
  const name = utf8.decode(r.buf.subarray(nameStart, nameEnd));
  if (location === undefined) {
    throw new EdgewardenError(
      'EW_ENGINE_MODEL_INVALID',
      `tensor "${name}" is stored externally but names no location`,
      {
        details: { tensor: name },
      },
    );
  }
  out.push({ tensor: name, location });
}

/** ValueInfoProto: name (1), type (2) → TypeProto.tensor_type (1) → shape (2) present or not. */
function scanInput(r: Reader): { name: string; hasShape: boolean } {
  let name = '';
  let hasShape = false;
  while (r.pos < r.end) {
    const tag = r.key();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) name = r.string();
    else if (field === 2 && wire === 2) {
      const typeEnd = r.lengthEnd();
      const type = new Reader(r.buf, r.pos, typeEnd);
      while (type.pos < type.end) {
        const t = type.key();
        const f = t >>> 3;
        const w = t & 7;
        if (f === 1 && w === 2) {
          const ttEnd = type.lengthEnd();
          const tt = new Reader(type.buf, type.pos, ttEnd);
          while (tt.pos < tt.end) {
            const t2 = tt.key();
            const f2 = t2 >>> 3;
            const w2 = t2 & 7;
            if (f2 === 2 && w2 === 2) hasShape = true;
            tt.skip(w2);
          }
          type.pos = tt.end;
        } else type.skip(w);
      }
      r.pos = typeEnd;
    } else r.skip(wire);
  }
  return { name, hasShape };
}

/**
 * Reads an ONNX ModelProto far enough to list its external-data references (initializers, Constant
 * node attributes, sparse tensors, subgraphs, functions, training graphs) and its graph inputs.
 *
 * An ORT-format model (flatbuffer) is accepted as having no external data and no declared shapes.
 * The walk is iterative (a hostile model may nest subgraphs arbitrarily deep) and reads nothing
 * outside the bytes it is given.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_INVALID` when the bytes are not a ModelProto with a graph,
 *   or an external-data tensor has no location.
 */
export function scanOnnxModel(bytes: Uint8Array): ModelScan {
  // ORT-format models (a flatbuffer with file identifier "ORTM") carry no external data.
  if (bytes.length >= 8 && bytes[4] === 0x4f && bytes[5] === 0x52 && bytes[6] === 0x54 && bytes[7] === 0x4d) {
    return { externalData: [], inputs: [] };
  }
  const externalData: ExternalDataRef[] = [];
  const inputs: { name: string; hasShape: boolean }[] = [];
  const table = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(LOCATION) ? CHILDREN : SHALLOW;
  let graphs = 0;
  // Work list of [kind, start, end]; messages are visited in the order they appear.
  const work: number[] = [MODEL, 0, bytes.length];
  while (work.length > 0) {
    const end = work.pop() as number;
    const start = work.pop() as number;
    const kind = work.pop() as number;
    const r = new Reader(bytes, start, end);
    const children = table[kind] as Record<number, number>;
    const found: number[] = [];
    while (r.pos < r.end) {
      const tag = r.key();
      const field = tag >>> 3;
      const wire = tag & 7;
      const child = wire === 2 ? children[field] : undefined;
      if (child === undefined) {
        if (kind === MAIN_GRAPH && field === 11 && wire === 2) {
          const e = r.lengthEnd();
          inputs.push(scanInput(new Reader(bytes, r.pos, e)));
          r.pos = e;
        } else r.skip(wire);
        continue;
      }
      const e = r.lengthEnd();
      if (child === TENSOR) scanTensor(new Reader(bytes, r.pos, e), externalData);
      else {
        if (child === MAIN_GRAPH) graphs++;
        found.push(child, r.pos, e);
      }
      r.pos = e;
    }
    // Pushed in reverse so that children are visited in model order.
    for (let i = found.length - 3; i >= 0; i -= 3)
      work.push(found[i] as number, found[i + 1] as number, found[i + 2] as number);
  }
  if (graphs === 0) invalid('no graph');
  return { externalData, inputs };
}
