"""An exported model with smaller weights that still computes in float32 (the shipped model, :mod:`evaluation.ship`).

* **float16 weights**: each float32 weight stored as float16 and cast back to float32 by a ``Cast`` node at the
  graph's start, about half the file (a full float16 graph fails: the ClassBranch's ``cls`` also feeds the prior's
  injection, a Concat of float16 and float32).
* **int8 matrices, where float16 is still too large.** The extended U-Net at 288x192 takes 35 MiB in float16, half
  of it the BBbranch's first layer (it flattens the 9x6x320 encoder map into 512 units). :func:`compact_weights`
  then stores the largest weight matrices (of ``Conv``, ``Gemm``, ``MatMul``), largest first, as int8 with one
  symmetric scale per output channel, read through ``DequantizeLinear`` to float32, until the file fits: weight
  only, every activation and operation stays float32 (quantising the activations too, onnxruntime's dynamic int8,
  drifted: 77-89 % of pixels agreed).

Only ``onnx`` is needed; :mod:`evaluation.ship` measures what the rounding changes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FP16_MIN_SIZE", "fp16_weights", "int8_weights", "compact_weights"]

FP16_MIN_SIZE = 64  # smaller float tensors (scalars, shapes' factors, biases of a few channels) stay float32
_OUTPUT_AXIS = {"Conv": lambda node: 0, "MatMul": lambda node: 1,  # the weight's output channels
                "Gemm": lambda node: 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1}


def _copy(model):
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _prepend(graph, nodes) -> None:
    """``nodes`` (reading initializers only) first in ``graph``."""
    nodes = list(nodes) + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def fp16_weights(model, keep: frozenset[str] = frozenset()):
    """A copy of the ``onnx.ModelProto`` ``model`` whose float32 initializers of at least :data:`FP16_MIN_SIZE`
    values are float16, each read through a ``Cast`` to float32 under its old name (a tensor that float16 cannot
    hold, with values beyond +-65504, and those named in ``keep``, stay float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = _copy(model)
    graph, kept, casts = out.graph, [], []
    fp16_max = float(np.finfo(np.float16).max)
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT and init.name not in keep else None
        if values is None or values.size < FP16_MIN_SIZE or np.abs(values).max(initial=0) > fp16_max:
            kept.append(init)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    _prepend(graph, casts)
    onnx.checker.check_model(out)
    return out


def _matrices(model) -> dict[str, int]:
    """The float32 weight matrices (initializers of two or more dimensions read by ``Conv``, ``Gemm`` or ``MatMul``
    as their weight) and the axis of each one's output channels."""
    from onnx import TensorProto

    floats = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and len(i.dims) >= 2}
    return {node.input[1]: _OUTPUT_AXIS[node.op_type](node) for node in model.graph.node
            if node.op_type in _OUTPUT_AXIS and len(node.input) > 1 and node.input[1] in floats}


def int8_weights(model, names):
    """A copy of ``model`` whose float32 weight matrices ``names`` are int8 with one symmetric scale per output
    channel, each read through ``DequantizeLinear`` to float32 under its old name."""
    import onnx
    from onnx import helper, numpy_helper

    axes = _matrices(model)
    unknown = set(names) - set(axes)
    if unknown:
        raise ValueError(f"not float32 weight matrices of Conv, Gemm or MatMul: {sorted(unknown)}")
    out = _copy(model)
    graph, kept, dequantize = out.graph, [], []
    for init in graph.initializer:
        if init.name not in names:
            kept.append(init)
            continue
        values, axis = numpy_helper.to_array(init), axes[init.name]
        others = tuple(d for d in range(values.ndim) if d != axis)
        scale = (np.abs(values).max(axis=others) / 127).astype(np.float32)
        scale[scale == 0] = 1.0
        shape = [1] * values.ndim
        shape[axis] = -1
        q = np.clip(np.rint(values / scale.reshape(shape)), -127, 127).astype(np.int8)
        kept += [numpy_helper.from_array(q, f"{init.name}__int8"), numpy_helper.from_array(scale, f"{init.name}__scale")]
        dequantize.append(helper.make_node("DequantizeLinear", [f"{init.name}__int8", f"{init.name}__scale"],
                                           [init.name], axis=axis, name=f"{init.name}__dequantize"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    _prepend(graph, dequantize)
    onnx.checker.check_model(out)
    return out


def compact_weights(model, max_bytes: int):
    """``model`` with float16 weights (:func:`fp16_weights`) and, if that file exceeds ``max_bytes``, its largest
    weight matrices as int8 (:func:`int8_weights`), largest first, the fewest that make it fit. Returns the model
    and the names of the int8 matrices; a ``ValueError`` when even every matrix in int8 does not fit."""
    half = fp16_weights(model)
    size = half.ByteSize()
    if size <= max_bytes:
        return half, []
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    chosen = []
    for name in sorted(_matrices(model), key=lambda n: -sizes[n]):
        chosen.append(name)
        size -= sizes[name]  # two bytes a value -> one (the scales: a few channels)
        if size <= max_bytes:
            small = fp16_weights(int8_weights(model, chosen), keep=frozenset(f"{n}__scale" for n in chosen))
            if small.ByteSize() <= max_bytes:
                return small, chosen
    raise ValueError(f"the model takes {half.ByteSize() / 2**20:.1f} MiB with float16 weights and more than "
                     f"{max_bytes / 2**20:.0f} MiB with every weight matrix in int8")
