"""Fixture zoo, part 3: BERT with native Gelu (ONNX opset 20), as torch 2.x's dynamo exporter
writes it, in both modes: approximate='none' (the erf form) and approximate='tanh'.

torch 1.13 exports at most opset 17, where F.gelu becomes the Div/Erf/Add/Mul chain (or the
Pow/Tanh chain). So `export_native` exports the module at opset 17 with a symbolic that
writes each aten::gelu as one `Gelu` node (in a placeholder domain, so torch's opset-17
checker accepts it), then moves those nodes to the default domain and imports opset 20.
Every other node is unchanged: none of the ops a BERT export uses changed meaning between
17 and 20 (`SAFE_OPS` below is checked). The graph outputs keep the shapes of a plain
export (torch cannot infer shapes through an unknown op), and the python onnx package here
(1.12) predates Gelu, so the opset-20 file is validated by the jest tests (onnxruntime and
src/onnx/validate.ts), not by onnx.checker.

scripts/export_zoo.py calls this for the families `gelu` and `gelu-tanh` (opsets (20,)).
Run only with /usr/bin/python3 (torch 1.13).
"""
import os

import onnx
import torch
import torch.nn.functional as F
from torch import nn
from torch.onnx import register_custom_op_symbolic, symbolic_helper, unregister_custom_op_symbolic

import fixture_models as fm

GELU_OPSET = 20
EXPORT_OPSET = 17
PLACEHOLDER = 'grl_native'
# Ops of a BERT export at opset 17 whose schema is unchanged in meaning up to opset 20
# (Cast, Constant, Equal, Identity, Reshape and Shape only gained types at 19).
SAFE_OPS = {'Add', 'Cast', 'Concat', 'Constant', 'Div', 'Gather', 'Gelu', 'Gemm', 'LayerNormalization', 'MatMul',
            'Mul', 'Reshape', 'Shape', 'Slice', 'Softmax', 'Sub', 'Transpose', 'Unsqueeze'}


class GeluFeedForward(fm.FeedForward):
    def __init__(self, cfg, approximate):
        super().__init__(cfg)
        self.approximate = approximate

    def forward(self, x):
        return self.out(F.gelu(self.dense(x), approximate=self.approximate))


class GeluLayer(fm.PostLNLayer):
    def __init__(self, cfg, approximate):
        super().__init__(cfg)
        self.ffn = GeluFeedForward(cfg, approximate)


class GeluMLPHead(fm.MLPHead):
    def __init__(self, d, classes, approximate):
        super().__init__(d, classes)
        self.approximate = approximate

    def forward(self, x):
        return self.out(F.gelu(self.dense(x), approximate=self.approximate))


class BertGeluModel(nn.Module):
    """BERT (fixture_models' embeddings and post-LN layers) whose GELUs use `approximate`."""

    input_names = ['input_ids', 'attention_mask', 'token_type_ids']
    approximate = 'none'

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = fm.BertEmbeddings(cfg)
        self.layer = nn.ModuleList([GeluLayer(cfg, self.approximate) for _ in range(cfg.layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        mask = fm.padding_mask(attention_mask)
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertGeluTanhModel(BertGeluModel):
    approximate = 'tanh'


def pos_head(cfg, approximate):
    """The `pos` head in the trunk's GELU mode, so a model has one mode throughout."""
    return GeluMLPHead(cfg.d, cfg.pos_classes, approximate)


@symbolic_helper.parse_args('v', 's')
def _gelu_symbolic(g, x, approximate='none'):
    return g.op(f'{PLACEHOLDER}::Gelu', x, approximate_s=approximate)


def export_native(model, path, export):
    """Export `model` with native Gelu nodes at opset 20. `export(model, path, opset)` is
    export_fixtures.export. Returns the ONNX model (also written to `path`, atomically)."""
    plain_path = path + '.plain.tmp'
    export(model, plain_path, EXPORT_OPSET)
    plain = onnx.load(plain_path)
    os.remove(plain_path)
    register_custom_op_symbolic('aten::gelu', _gelu_symbolic, EXPORT_OPSET)
    try:
        export(model, path, EXPORT_OPSET)
    finally:
        unregister_custom_op_symbolic('aten::gelu', EXPORT_OPSET)
    om = onnx.load(path)
    onnx.checker.check_model(om)  # opset 17 with the placeholder domain: everything but Gelu checked
    for n in om.graph.node:
        if n.domain == PLACEHOLDER:
            n.domain = ''
    del om.opset_import[:]
    om.opset_import.append(onnx.helper.make_opsetid('', GELU_OPSET))
    # torch cannot infer shapes through the placeholder op: take the outputs' from the plain export.
    assert [o.name for o in om.graph.output] == [o.name for o in plain.graph.output]
    del om.graph.output[:]
    om.graph.output.extend(plain.graph.output)
    del om.graph.value_info[:]
    ops = {n.op_type for n in om.graph.node}
    if not ops <= SAFE_OPS:
        raise SystemExit(f'zoo_gelu: ops not checked for opset {GELU_OPSET}: {sorted(ops - SAFE_OPS)}')
    if {'Erf', 'Tanh'} & ops or 'Gelu' not in ops:
        raise SystemExit(f'zoo_gelu: {path}: expected native Gelu only, got {sorted(ops)}')
    tmp = path + '.tmp'
    onnx.save(om, tmp)
    os.replace(tmp, path)
    return om
