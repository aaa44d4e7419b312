// ONNX schema data for validate.ts: the opset each default-domain (ai.onnx)
// operator first appeared in (from onnx/docs/Changelog.md), and the attribute
// types of the ops grl-onnx has gradient rules for (from the operator specs).
// Experimental ops of opset 1 that were never standardised are left out.
import { AttrType } from './proto';

/** op_type -> the first ai.onnx opset that defines it. */
export const OP_SINCE: Readonly<Record<string, number>> = {
  // opset 1
  Abs: 1, Add: 1, And: 1, ArgMax: 1, ArgMin: 1, AveragePool: 1, BatchNormalization: 1, Cast: 1, Ceil: 1, Clip: 1,
  Concat: 1, Constant: 1, Conv: 1, ConvTranspose: 1, DepthToSpace: 1, Div: 1, Dropout: 1, Elu: 1, Equal: 1, Exp: 1,
  Flatten: 1, Floor: 1, GRU: 1, Gather: 1, Gemm: 1, GlobalAveragePool: 1, GlobalLpPool: 1, GlobalMaxPool: 1, Greater: 1,
  HardSigmoid: 1, Hardmax: 1, Identity: 1, If: 1, InstanceNormalization: 1, LRN: 1, LSTM: 1, LeakyRelu: 1, Less: 1,
  Log: 1, LogSoftmax: 1, Loop: 1, LpNormalization: 1, LpPool: 1, MatMul: 1, Max: 1, MaxPool: 1, MaxRoiPool: 1, Mean: 1,
  Min: 1, Mul: 1, Neg: 1, Not: 1, Or: 1, PRelu: 1, Pad: 1, Pow: 1, RNN: 1, RandomNormal: 1, RandomNormalLike: 1,
  RandomUniform: 1, RandomUniformLike: 1, Reciprocal: 1, ReduceL1: 1, ReduceL2: 1, ReduceLogSum: 1, ReduceLogSumExp: 1,
  ReduceMax: 1, ReduceMean: 1, ReduceMin: 1, ReduceProd: 1, ReduceSum: 1, ReduceSumSquare: 1, Relu: 1, Reshape: 1,
  Selu: 1, Shape: 1, Sigmoid: 1, Size: 1, Slice: 1, Softmax: 1, Softplus: 1, Softsign: 1, SpaceToDepth: 1, Split: 1,
  Sqrt: 1, Squeeze: 1, Sub: 1, Sum: 1, Tanh: 1, Tile: 1, TopK: 1, Transpose: 1, Unsqueeze: 1, Xor: 1,
  // opsets 7 to 11
  Acos: 7, Asin: 7, Atan: 7, Cos: 7, Sin: 7, Tan: 7, Multinomial: 7, Upsample: 7,
  Expand: 8, Scan: 8,
  Acosh: 9, Asinh: 9, Atanh: 9, Cosh: 9, Sinh: 9, Compress: 9, ConstantOfShape: 9, EyeLike: 9, Erf: 9, IsNaN: 9,
  MaxUnpool: 9, MeanVarianceNormalization: 9, NonZero: 9, OneHot: 9, Scatter: 9, Shrink: 9, Sign: 9, TfIdfVectorizer: 9, Where: 9,
  ConvInteger: 10, DequantizeLinear: 10, IsInf: 10, MatMulInteger: 10, Mod: 10, NonMaxSuppression: 10, QLinearConv: 10,
  QLinearMatMul: 10, QuantizeLinear: 10, Resize: 10, ReverseSequence: 10, RoiAlign: 10, StringNormalizer: 10, ThresholdedRelu: 10,
  BitShift: 11, ConcatFromSequence: 11, CumSum: 11, Det: 11, DynamicQuantizeLinear: 11, GatherElements: 11, GatherND: 11,
  Range: 11, Round: 11, ScatterElements: 11, ScatterND: 11, SequenceAt: 11, SequenceConstruct: 11, SequenceEmpty: 11,
  SequenceErase: 11, SequenceInsert: 11, SequenceLength: 11, SplitToSequence: 11, Unique: 11,
  // opsets 12 to 24
  Celu: 12, Einsum: 12, GreaterOrEqual: 12, LessOrEqual: 12, NegativeLogLikelihoodLoss: 12, SoftmaxCrossEntropyLoss: 12,
  HardSwish: 14, Trilu: 14,
  Bernoulli: 15, CastLike: 15, Optional: 15, OptionalGetElement: 15, OptionalHasElement: 15,
  GridSample: 16,
  BlackmanWindow: 17, DFT: 17, HammingWindow: 17, HannWindow: 17, LayerNormalization: 17, MelWeightMatrix: 17, STFT: 17, SequenceMap: 17,
  BitwiseAnd: 18, BitwiseNot: 18, BitwiseOr: 18, BitwiseXor: 18, CenterCropPad: 18, Col2Im: 18, GroupNormalization: 18, Mish: 18,
  DeformConv: 19,
  AffineGrid: 20, Gelu: 20, ImageDecoder: 20, RegexFullMatch: 20, StringConcat: 20, StringSplit: 20,
  Attention: 23, RMSNormalization: 23, RotaryEmbedding: 23,
  Swish: 24, TensorScatter: 24,
};

/** The newest default-domain opset OP_SINCE knows; above it an unknown op may be new, so it is not refused. */
export const NEWEST_KNOWN_OPSET = 24;

const { FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS, SPARSE_TENSOR } = AttrType;
const REDUCE = { axes: INTS, keepdims: INT, noop_with_empty_axes: INT };

/** Attribute types, per op with a gradient rule (attributes not listed are not checked). */
export const ATTR_TYPES: Readonly<Record<string, Readonly<Record<string, AttrType>>>> = {
  Cast: { to: INT, saturate: INT, round_mode: STRING },
  Concat: { axis: INT },
  Constant: { value: TENSOR, sparse_value: SPARSE_TENSOR, value_float: FLOAT, value_floats: FLOATS, value_int: INT, value_ints: INTS, value_string: STRING, value_strings: STRINGS },
  ConstantOfShape: { value: TENSOR },
  Dropout: { ratio: FLOAT, seed: INT, is_test: INT },
  Flatten: { axis: INT },
  Gather: { axis: INT },
  Gelu: { approximate: STRING },
  Gemm: { alpha: FLOAT, beta: FLOAT, transA: INT, transB: INT },
  LayerNormalization: { axis: INT, epsilon: FLOAT, stash_type: INT },
  LogSoftmax: { axis: INT },
  Pad: { mode: STRING, pads: INTS, value: FLOAT },
  ReduceMean: REDUCE,
  ReduceSum: REDUCE,
  Reshape: { allowzero: INT, shape: INTS },
  Slice: { starts: INTS, ends: INTS, axes: INTS },
  Softmax: { axis: INT },
  Split: { axis: INT, split: INTS, num_outputs: INT },
  Squeeze: { axes: INTS },
  Transpose: { perm: INTS },
  Trilu: { upper: INT },
  Unsqueeze: { axes: INTS },
};
