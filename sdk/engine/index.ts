// The engine's public face: load ONNX models, identify them by digest, check inputs.
export type { BackendSession, InferenceBackend, SessionOptions, TensorMeta } from './backend';
export type { BoardHints } from './board-hints';
export { currentBoardHints, registerBoardHints } from './board-hints';
export { ENGINE_CODES, type EngineCode } from './codes';
export type { LoadedModel, LoadModelOptions } from './load';
export { loadModel } from './load';
export type { InspectedModel, ModelDigest, ModelDigestOptions } from './model-digest';
export { computeModelDigest, inspectModelFile } from './model-digest';
export type { OnnxRuntimeBackendOptions, OrtModuleLike, OrtSessionLike, OrtValueMetadata } from './onnx-backend';
export { OnnxRuntimeBackend } from './onnx-backend';
export type { ExternalDataRef, ModelScan } from './onnx-scan';
export { scanOnnxModel } from './onnx-scan';
export type { DType, TensorData, TensorInput, TensorMap, TensorView } from './tensor';
export { DTYPES, elementCount, float32ToFloat16Bits, isDType, toTensorView } from './tensor';
export { type TensorJson, tensorFromJson, tensorsFromJson, tensorsToJson, tensorToJson } from './tensor-json';
export type { ThreadChoice, ThreadSource } from './threads';
export { chooseThreads, SMALL_MODEL_BYTES } from './threads';
export { validateInputs } from './validate';
