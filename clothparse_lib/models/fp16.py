"""An exported model with half-size weights: each float32 weight stored as float16 and cast back to float32 by a
``Cast`` node at the graph's start, so the file is about half as large while every operation still computes in
float32 (a full float16 graph fails: the ClassBranch's ``cls`` also feeds the prior's injection, a Concat of
float16 and float32). Only ``onnx`` is needed; :mod:`evaluation.ship` measures what the rounding changes."""
from __future__ import annotations

import numpy as np

__all__ = ["FP16_MIN_SIZE", "fp16_weights"]

FP16_MIN_SIZE = 64  # smaller float tensors (scalars, shapes' factors, biases of a few channels) stay float32


def fp16_weights(model):
    """A copy of the ``onnx.ModelProto`` ``model`` whose float32 initializers of at least :data:`FP16_MIN_SIZE`
    values are float16, each read through a ``Cast`` to float32 under its old name (a tensor that float16 cannot
    hold, with values beyond +-65504, stays float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph, kept, casts = out.graph, [], []
    fp16_max = float(np.finfo(np.float16).max)
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if values is None or values.size < FP16_MIN_SIZE or np.abs(values).max(initial=0) > fp16_max:
            kept.append(init)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(out)
    return out
