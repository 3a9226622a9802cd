/** Element types edgewarden understands, named as onnxruntime-node names them. */
export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string';

/** Tensor element storage. float16 is carried as raw Uint16Array bits. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/**
 * A tensor as edgewarden reads it. onnxruntime-node's `Tensor` satisfies this shape structurally,
 * so outputs pass through without a copy.
 */
export interface TensorView {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/** What callers may pass as an input: an onnxruntime `Tensor`, a {@link TensorView}, or plain `{ dtype, dims, data }`. */
export type TensorInput =
  | TensorView
  | {
      readonly dtype: DType;
      readonly dims: readonly number[];
      readonly data: TensorData | readonly number[] | readonly bigint[] | readonly boolean[];
    };

/** Named tensors. */
export type TensorMap<T = TensorView> = Record<string, T>;
