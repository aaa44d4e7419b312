// Graph IR: light static shape and type inference for transformer exports, with
// an onnxruntime fallback for ranks the rules cannot decide.
//
// Seeds from graph inputs, initializers and value_info, then propagates element
// types, ranks and dims op by op (elementwise.ts, values.ts, layout.ts,
// compute.ts). Small integer tensors that compute shapes (Shape -> Gather ->
// Concat -> Reshape chains in torch exports) are tracked by value, so reshape
// targets stay static. The rule everywhere: an unknown dim is null and an
// unknown rank is undefined; a wrong static shape is worse than none, so when
// in doubt we answer "unknown" and the gradient rules fall back to in-graph
// Shape(). Ranks still unknown can be observed in onnxruntime (fallback.ts).
export type { Dim } from './dims';
export { broadcastShapes } from './dims';
export { ShapeInference, inferShapes, SHAPE_RULE_OPS } from './inference';
export type { ShapeTable, ShapeHints, RankSource } from './inference';
export { einsumShape } from './compute';
export { rankReport } from './report';
export type { RankReport, RankBlocker } from './report';
export { observeUnknownRanks, unknownRankTensors } from './fallback';
export type { ObservedRanks } from './fallback';
