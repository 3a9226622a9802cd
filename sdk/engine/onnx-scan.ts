import protobuf from 'protobufjs';
import { EdgewardenError } from '../errors';

// A minimal reflection schema of onnx.proto: only the fields that can hold a TensorProto (where
// external-data references live) and the graph inputs' shapes. Every other field, raw_data
// included, is an unknown field to protobufjs and is skipped without being copied.
const root = protobuf.Root.fromJSON({
  nested: {
    ModelProto: {
      fields: {
        graph: { type: 'GraphProto', id: 7 },
        trainingInfo: { rule: 'repeated', type: 'TrainingInfoProto', id: 20 },
        functions: { rule: 'repeated', type: 'FunctionProto', id: 25 },
      },
    },
    TrainingInfoProto: {
      fields: { initialization: { type: 'GraphProto', id: 1 }, algorithm: { type: 'GraphProto', id: 2 } },
    },
    FunctionProto: { fields: { node: { rule: 'repeated', type: 'NodeProto', id: 7 } } },
    GraphProto: {
      fields: {
        node: { rule: 'repeated', type: 'NodeProto', id: 1 },
        initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
        input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
        sparseInitializer: { rule: 'repeated', type: 'SparseTensorProto', id: 15 },
      },
    },
    NodeProto: { fields: { attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 } } },
    AttributeProto: {
      fields: {
        t: { type: 'TensorProto', id: 5 },
        g: { type: 'GraphProto', id: 6 },
        tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
        graphs: { rule: 'repeated', type: 'GraphProto', id: 11 },
        sparseTensor: { type: 'SparseTensorProto', id: 22 },
        sparseTensors: { rule: 'repeated', type: 'SparseTensorProto', id: 23 },
      },
    },
    SparseTensorProto: {
      fields: { values: { type: 'TensorProto', id: 1 }, indices: { type: 'TensorProto', id: 2 } },
    },
    TensorProto: {
      fields: {
        name: { type: 'string', id: 8 },
        externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
        dataLocation: { type: 'int32', id: 14 },
      },
    },
    StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
    ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
    TypeProto: { fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } } },
    TypeProtoTensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
    TensorShapeProto: { fields: {} },
  },
});
const ModelProto = root.lookupType('ModelProto');

interface Entry {
  key?: string;
  value?: string;
}
interface Tensor {
  name?: string;
  externalData?: Entry[];
  dataLocation?: number;
}
interface Sparse {
  values?: Tensor | null;
  indices?: Tensor | null;
}
interface Attribute {
  t?: Tensor | null;
  g?: Graph | null;
  tensors?: Tensor[];
  graphs?: Graph[];
  sparseTensor?: Sparse | null;
  sparseTensors?: Sparse[];
}
interface Node {
  attribute?: Attribute[];
}
interface ValueInfo {
  name?: string;
  type?: { tensorType?: { shape?: object | null } | null } | null;
}
interface Graph {
  node?: Node[];
  initializer?: Tensor[];
  input?: ValueInfo[];
  sparseInitializer?: Sparse[];
}
interface Model {
  graph?: Graph | null;
  trainingInfo?: { initialization?: Graph | null; algorithm?: Graph | null }[];
  functions?: { node?: Node[] }[];
}

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

/**
 * Reads an ONNX ModelProto far enough to list its external-data references (initializers, Constant
 * node attributes, sparse tensors, subgraphs, functions, training graphs) and its graph inputs.
 *
 * An ORT-format model (flatbuffer) is accepted as having no external data and no declared shapes.
 *
 * @throws EdgewardenError `EW_ENGINE_MODEL_INVALID` when the bytes are not a ModelProto with a graph,
 *   or an external-data tensor has no location.
 */
export function scanOnnxModel(bytes: Uint8Array): ModelScan {
  // ORT-format models (a flatbuffer with file identifier "ORTM") carry no external data.
  if (bytes.length >= 8 && String.fromCharCode(...bytes.subarray(4, 8)) === 'ORTM') {
    return { externalData: [], inputs: [] };
  }
  let model: Model;
  try {
    model = ModelProto.decode(bytes) as unknown as Model;
  } catch (err) {
    throw new EdgewardenError('EW_ENGINE_MODEL_INVALID', `not an ONNX model: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!model.graph) {
    throw new EdgewardenError('EW_ENGINE_MODEL_INVALID', 'not an ONNX model: no graph');
  }
  const externalData: ExternalDataRef[] = [];
  const tensors: Tensor[] = [];
  const addSparse = (s: Sparse | null | undefined) => {
    if (s?.values) tensors.push(s.values);
    if (s?.indices) tensors.push(s.indices);
  };
  // Iterative walk: a hostile model can nest subgraphs deeply; protobufjs already decoded them.
  const graphs: Graph[] = [model.graph];
  const nodes: Node[] = [];
  const pushAll = <T>(into: T[], from: readonly T[] | undefined) => {
    for (const x of from ?? []) into.push(x); // not push(...x): a huge list would overflow the argument limit
  };
  for (const f of model.functions ?? []) pushAll(nodes, f.node);
  for (const t of model.trainingInfo ?? []) {
    if (t.initialization) graphs.push(t.initialization);
    if (t.algorithm) graphs.push(t.algorithm);
  }
  while (graphs.length > 0 || nodes.length > 0) {
    const g = graphs.pop();
    if (g) {
      pushAll(tensors, g.initializer);
      for (const s of g.sparseInitializer ?? []) addSparse(s);
      pushAll(nodes, g.node);
    }
    const n = nodes.pop();
    for (const a of n?.attribute ?? []) {
      if (a.t) tensors.push(a.t);
      pushAll(tensors, a.tensors);
      addSparse(a.sparseTensor);
      for (const s of a.sparseTensors ?? []) addSparse(s);
      if (a.g) graphs.push(a.g);
      pushAll(graphs, a.graphs);
    }
  }
  for (const t of tensors) {
    const entries = t.externalData ?? [];
    const loc = entries.find((e) => e.key === 'location');
    if (t.dataLocation === EXTERNAL || loc !== undefined) {
      if (loc === undefined || typeof loc.value !== 'string') {
        throw new EdgewardenError(
          'EW_ENGINE_MODEL_INVALID',
          `tensor "${t.name ?? ''}" is stored externally but names no location`,
          { details: { tensor: t.name ?? '' } },
        );
      }
      externalData.push({ tensor: t.name ?? '', location: loc.value });
    }
  }
  const inputs = (model.graph.input ?? []).map((v) => ({
    name: v.name ?? '',
    hasShape: v.type?.tensorType?.shape != null,
  }));
  return { externalData, inputs };
}
