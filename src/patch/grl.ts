// The gradient-reversal layer as it appears in ONNX graphs: a node
// `ai.grl-onnx::GradientReversal(X) -> Y` with a float attribute `lambda` and a
// string attribute `head`, backed by a model-local function whose body is
// Identity, so any runtime with local-function support runs it for inference.
export const GRL_DOMAIN = 'ai.grl-onnx';
export const GRL_OP = 'GradientReversal';
export const GRL_DOMAIN_VERSION = 1;
