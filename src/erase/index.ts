// Concept erasure: the public surface of src/erase (fitters per method, the one
// eraser type, the ONNX splice and its metadata record, the end-to-end run).
export * from './eraser';
export * from './stats';
export { LeaceFitter, fitLeace, DEFAULT_LEACE_SVD_TOL } from './leace';
export type { LeaceOptions, LeaceStats } from './leace';
export { fitInlp, probeClassifier, INLP_DEFAULTS } from './inlp';
export type { InlpOptions, InlpResult, InlpIteration, LinearClassifier } from './inlp';
export { randomEraser } from './random';
export { fitEraser, checkErasureFeatures, MIN_ERASE_ROWS } from './fit';
export type { FitEraserOptions, FitEraserResult } from './fit';
export { spliceEraser, removeEraser, removeErasers, checkEraseTensor, eraserAt, readErasers } from './splice';
export type { SpliceOptions, SpliceResult, EraserRecord, EraserFitInfo } from './splice';
export { ERASERS_KEY } from './records';
export { erasureTarget, defaultErasureTensor, loadErasureExamples } from './target';
export type { ErasureTarget } from './target';
export { eraseModel, fileSha256 } from './run';
export type { EraseModelOptions, EraseModelResult } from './run';
