/** Error codes of the engine area, with what each means. */
export const ENGINE_CODES = {
  EW_ENGINE_MODEL_NOT_FOUND: 'The model file, or one of its external-data files, does not exist or cannot be read.',
  EW_ENGINE_MODEL_INVALID: 'The model file is not a valid ONNX model (does not parse, or ONNX Runtime refuses it).',
  EW_ENGINE_MODEL_CHANGED:
    'A model file or one of its external-data files was replaced while the model loaded: what runs might not be what was digested. Load it again.',
  EW_ENGINE_EXTERNAL_DATA:
    'An external-data location in the model is absolute, malformed, or escapes the model folder (.., symlink).',
  EW_ENGINE_TENSOR_JSON:
    'A tensor in JSON form (input or result file) is not {dtype, dims, data} with matching element count and values.',
  EW_ENGINE_INPUT:
    'An input is missing, unknown, or has the wrong dtype, rank, dimension or data length (details.input names it).',
  EW_ENGINE_RUN: 'ONNX Runtime failed while running the model (the runtime message is kept as the cause).',
  EW_ENGINE_RELEASED: 'A model session was used after release().',
  EW_ENGINE_RUNTIME_UNAVAILABLE:
    'onnxruntime-node cannot be loaded on this platform (no binary for it, e.g. 32-bit ARM, or a broken install).',
  EW_ENGINE_OPTIONS: 'Engine options are invalid (thread counts, execution provider names).',
} as const;

export type EngineCode = keyof typeof ENGINE_CODES;
