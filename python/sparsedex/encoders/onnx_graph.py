"""Read an ONNX model's interface and append SPLADE pooling to it, without the ``onnx`` package.

An ONNX file is a serialized protobuf ``ModelProto`` (schema: onnx/onnx.proto). Loading a
SPLADE model needs only a little of it: the opset, the graph's inputs and outputs (names,
element types, shapes) and the initializer names (older exporters list initializers among
the inputs). Appending the pooling needs a few nodes, initializers and one new output. Both
are done here on the protobuf wire format directly (varints and length-delimited fields;
Protocol Buffers encoding guide), so ``onnx`` (and its protobuf runtime) is not needed at run
time. Nodes, weights and everything else the model holds are copied through as bytes,
untouched: ONNX Runtime then runs the same graph the ``onnx``-based
:func:`sparsedex.encoders.splade.add_pooling_to_graph` builds (tested: identical vectors).

The pooling (see :mod:`sparsedex.encoders.splade`) adds::

    mask_bool = Cast(mask, to=BOOL)                    mask3 = Unsqueeze(mask_bool, [-1])
    bias      = Where(mask3, 0.0, -inf)                masked = Add(logits, bias)
    max       = ReduceMax(masked, axes=[1], keepdims=0)
    output    = Log(Add(Relu(max), 1.0))               # [batch, vocab], the only graph output

Errors: a file that is not a protobuf ModelProto, or lacks a graph, raises
:class:`OnnxFormatError` (a ``ValueError``) naming what is wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "OnnxFormatError",
    "ModelInterface",
    "ValueInfo",
    "read_interface",
    "with_pooling",
    "POOLED_OUTPUT",
    "ELEM_FLOAT",
    "ELEM_INT32",
    "ELEM_INT64",
    "ELEM_BOOL",
]

POOLED_OUTPUT = "sparsedex_sparse_vector"

# TensorProto.DataType values
ELEM_FLOAT = 1
ELEM_INT32 = 6
ELEM_INT64 = 7
ELEM_BOOL = 9

# field numbers (onnx.proto)
_MODEL_OPSET, _MODEL_GRAPH = 8, 7
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP = 1, 2, 3, 4
_NODE_ATTR = 5
_ATTR_NAME, _ATTR_I, _ATTR_INTS, _ATTR_TYPE = 1, 3, 8, 20
_ATTR_INT, _ATTR_INTS_TYPE = 2, 7
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_RAW, _TENSOR_LOCATION = 1, 2, 8, 9, 14
_VI_NAME, _VI_TYPE = 1, 2
_TYPE_TENSOR = 1
_TT_ELEM, _TT_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2


class OnnxFormatError(ValueError):
    """The bytes are not an ONNX model this reader understands."""


# -- wire format: reading ---------------------------------------------------------------------
def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise OnnxFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxFormatError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview, int, int]]:
    """``(field, wire_type, value, start, end)`` for each field of a message; ``value`` is the
    integer of a varint / fixed field or the payload of a length-delimited one, ``start:end``
    the field's whole encoding (key included)."""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos)
        fno, wt = key >> 3, key & 7
        if fno == 0:
            raise OnnxFormatError(f"field number 0 at byte {start}")
        value: int | memoryview
        if wt == 0:
            value, pos = _varint(buf, pos)
        elif wt == 1:
            if pos + 8 > end:
                raise OnnxFormatError("truncated 64-bit field")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise OnnxFormatError(f"field {fno} claims {n} bytes, {end - pos} left")
            value = buf[pos : pos + n]
            pos += n
        elif wt == 5:
            if pos + 4 > end:
                raise OnnxFormatError("truncated 32-bit field")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise OnnxFormatError(f"unsupported wire type {wt} (field {fno}) at byte {start}")
        yield fno, wt, value, start, pos


def _text(v: int | memoryview) -> str:
    if not isinstance(v, memoryview):
        raise OnnxFormatError("expected a string field")
    try:
        return bytes(v).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxFormatError("a string field is not UTF-8") from None


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: name, element type (TensorProto.DataType) and shape
    (an int per known dimension, a str for a symbolic one, None for an unnamed one;
    ``shape`` is None when the rank is unknown)."""

    name: str
    elem_type: int | None
    shape: tuple[int | str | None, ...] | None


@dataclass
class ModelInterface:
    """What loading a SPLADE model needs to know about an ONNX model."""

    opset: int
    inputs: list[ValueInfo]  # graph inputs that are not initializers
    outputs: list[ValueInfo]
    external_data: bool = False  # some initializer's data lives in another file
    graph_span: tuple[int, int] = (0, 0)  # the graph field's payload in the model bytes
    graph_field: tuple[int, int] = (0, 0)  # the graph field's whole encoding
    initializers: set[str] = field(default_factory=set)


def _value_info(buf: memoryview) -> ValueInfo:
    name, elem, shape = "", None, None
    for fno, wt, v, _, _ in _fields(buf):
        if fno == _VI_NAME and wt == 2:
            name = _text(v)
        elif fno == _VI_TYPE and wt == 2:
            for f2, w2, v2, _, _ in _fields(v):  # type: ignore[arg-type]
                if f2 == _TYPE_TENSOR and w2 == 2:
                    for f3, w3, v3, _, _ in _fields(v2):  # type: ignore[arg-type]
                        if f3 == _TT_ELEM and w3 == 0:
                            elem = int(v3)  # type: ignore[arg-type]
                        elif f3 == _TT_SHAPE and w3 == 2:
                            dims: list[int | str | None] = []
                            for f4, w4, v4, _, _ in _fields(v3):  # type: ignore[arg-type]
                                if f4 == _SHAPE_DIM and w4 == 2:
                                    d: int | str | None = None
                                    for f5, w5, v5, _, _ in _fields(v4):  # type: ignore[arg-type]
                                        if f5 == _DIM_VALUE and w5 == 0:
                                            d = _signed64(int(v5))  # type: ignore[arg-type]
                                        elif f5 == _DIM_PARAM and w5 == 2:
                                            d = _text(v5)
                                    dims.append(d)
                            shape = tuple(dims)
    return ValueInfo(name, elem, shape)


def _tensor_name_and_location(buf: memoryview) -> tuple[str, bool]:
    name, external = "", False
    for fno, wt, v, _, _ in _fields(buf):
        if fno == _TENSOR_NAME and wt == 2:
            name = _text(v)
        elif fno == _TENSOR_LOCATION and wt == 0:
            external = v == 1
    return name, external


def read_interface(model: bytes | memoryview) -> ModelInterface:
    """Opset, inputs, outputs and initializer names of a serialized ModelProto."""
    buf = memoryview(model)
    opset: int | None = None
    graph: tuple[int, int, int, int] | None = None
    try:
        for fno, wt, v, start, end in _fields(buf):
            if fno == _MODEL_OPSET and wt == 2:
                domain, version = "", 1
                for f2, w2, v2, _, _ in _fields(v):  # type: ignore[arg-type]
                    if f2 == _OPSET_DOMAIN and w2 == 2:
                        domain = _text(v2)
                    elif f2 == _OPSET_VERSION and w2 == 0:
                        version = int(v2)  # type: ignore[arg-type]
                if domain in ("", "ai.onnx"):
                    opset = version
            elif fno == _MODEL_GRAPH and wt == 2:
                payload_start = end - len(v)  # type: ignore[arg-type]
                graph = (payload_start, end, start, end)
    except OnnxFormatError as e:
        raise OnnxFormatError(f"not an ONNX model: {e}") from None
    if graph is None:
        raise OnnxFormatError("not an ONNX model: no graph")
    gbuf = buf[graph[0] : graph[1]]
    inputs: list[ValueInfo] = []
    outputs: list[ValueInfo] = []
    inits: set[str] = set()
    external = False
    for fno, wt, v, _, _ in _fields(gbuf):
        if wt != 2:
            continue
        if fno == _GRAPH_INPUT:
            inputs.append(_value_info(v))  # type: ignore[arg-type]
        elif fno == _GRAPH_OUTPUT:
            outputs.append(_value_info(v))  # type: ignore[arg-type]
        elif fno == _GRAPH_INIT:
            name, ext = _tensor_name_and_location(v)  # type: ignore[arg-type]
            inits.add(name)
            external = external or ext
    return ModelInterface(
        opset=opset if opset is not None else 1,
        inputs=[i for i in inputs if i.name not in inits],
        outputs=outputs,
        external_data=external,
        graph_span=(graph[0], graph[1]),
        graph_field=(graph[2], graph[3]),
        initializers=inits,
    )


# -- wire format: writing ---------------------------------------------------------------------
def _enc_varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(fno: int, wt: int) -> bytes:
    return _enc_varint((fno << 3) | wt)


def _len_field(fno: int, payload: bytes) -> bytes:
    return _key(fno, 2) + _enc_varint(len(payload)) + payload


def _str_field(fno: int, s: str) -> bytes:
    return _len_field(fno, s.encode("utf-8"))


def _int_field(fno: int, n: int) -> bytes:
    return _key(fno, 0) + _enc_varint(n)


def _attr_int(name: str, value: int) -> bytes:
    return _str_field(_ATTR_NAME, name) + _int_field(_ATTR_I, value) + _int_field(_ATTR_TYPE, _ATTR_INT)


def _attr_ints(name: str, values: list[int]) -> bytes:
    body = _str_field(_ATTR_NAME, name)
    for x in values:
        body += _int_field(_ATTR_INTS, x)
    return body + _int_field(_ATTR_TYPE, _ATTR_INTS_TYPE)


def _node(op: str, inputs: list[str], outputs: list[str], name: str, attrs: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    body = b"".join(_str_field(_NODE_INPUT, i) for i in inputs)
    body += b"".join(_str_field(_NODE_OUTPUT, o) for o in outputs)
    body += _str_field(_NODE_NAME, name) + _str_field(_NODE_OP, op)
    body += b"".join(_len_field(_NODE_ATTR, a) for a in attrs)
    return _len_field(_GRAPH_NODE, body)


def _tensor(name: str, elem: int, dims: list[int], raw: bytes) -> bytes:
    body = b"".join(_int_field(_TENSOR_DIMS, d) for d in dims)
    body += _int_field(_TENSOR_TYPE, elem) + _str_field(_TENSOR_NAME, name) + _len_field(_TENSOR_RAW, raw)
    return _len_field(_GRAPH_INIT, body)


def _value_info_bytes(fno: int, name: str, elem: int, dims: list[int | str]) -> bytes:
    shape = b""
    for d in dims:
        dim = _int_field(_DIM_VALUE, d) if isinstance(d, int) else _str_field(_DIM_PARAM, d)
        shape += _len_field(_SHAPE_DIM, dim)
    tensor = _int_field(_TT_ELEM, elem) + _len_field(_TT_SHAPE, shape)
    typ = _len_field(_TYPE_TENSOR, tensor)
    return _len_field(fno, _str_field(_VI_NAME, name) + _len_field(_VI_TYPE, typ))


def with_pooling(
    model: bytes,
    logits: str,
    mask: str,
    *,
    add_mask_input: bool = False,
    output: str = POOLED_OUTPUT,
    interface: ModelInterface | None = None,
) -> bytes:
    """``model`` with SPLADE max-pooling appended; ``output[batch, vocab]`` becomes the graph's
    only output (see the module docstring).

    ``logits`` names the ``[batch, seq, vocab]`` tensor to pool; ``mask`` the ``[batch, seq]``
    attention mask, a graph input (declared here, int64, when ``add_mask_input``). The
    model's own nodes and weights are copied as they are.
    """
    info = interface or read_interface(model)
    buf = memoryview(model)
    gbuf = buf[info.graph_span[0] : info.graph_span[1]]
    p = "sparsedex_pool_"
    pieces: list[bytes | memoryview] = []
    for fno, wt, _, start, end in _fields(gbuf):
        if fno == _GRAPH_OUTPUT and wt == 2:
            continue  # replaced below
        pieces.append(gbuf[start:end])

    f32 = struct.Struct("<f")
    i64 = struct.Struct("<q")
    new = [
        _tensor(p + "zero", ELEM_FLOAT, [], f32.pack(0.0)),
        _tensor(p + "neg_inf", ELEM_FLOAT, [], f32.pack(float("-inf"))),
        _tensor(p + "one", ELEM_FLOAT, [], f32.pack(1.0)),
        _node("Cast", [mask], [p + "mask_bool"], p + "cast", [_attr_int("to", ELEM_BOOL)]),
    ]
    if info.opset >= 13:
        new.append(_tensor(p + "axes_last", ELEM_INT64, [1], i64.pack(-1)))
        new.append(_node("Unsqueeze", [p + "mask_bool", p + "axes_last"], [p + "mask3"], p + "unsqueeze"))
    else:
        new.append(_node("Unsqueeze", [p + "mask_bool"], [p + "mask3"], p + "unsqueeze", [_attr_ints("axes", [-1])]))
    new += [
        # bias[b, t, 1] = 0 for real tokens, -inf for padding; logits + 0 == logits exactly
        _node("Where", [p + "mask3", p + "zero", p + "neg_inf"], [p + "bias"], p + "where"),
        _node("Add", [logits, p + "bias"], [p + "masked"], p + "add_bias"),
    ]
    if info.opset >= 18:
        new.append(_tensor(p + "axes_seq", ELEM_INT64, [1], i64.pack(1)))
        new.append(
            _node("ReduceMax", [p + "masked", p + "axes_seq"], [p + "max"], p + "reduce_max",
                  [_attr_int("keepdims", 0)])
        )
    else:
        new.append(
            _node("ReduceMax", [p + "masked"], [p + "max"], p + "reduce_max",
                  [_attr_ints("axes", [1]), _attr_int("keepdims", 0)])
        )
    new += [
        _node("Relu", [p + "max"], [p + "relu"], p + "relu"),
        _node("Add", [p + "relu", p + "one"], [p + "plus1"], p + "add_one"),
        _node("Log", [p + "plus1"], [output], p + "log"),
    ]
    if add_mask_input:
        new.append(_value_info_bytes(_GRAPH_INPUT, mask, ELEM_INT64, ["batch", "seq"]))
    new.append(_value_info_bytes(_GRAPH_OUTPUT, output, ELEM_FLOAT, ["batch", "vocab"]))
    pieces += new
    graph_len = sum(len(x) for x in pieces)
    gstart, gend = info.graph_field
    # one copy of the model: bytes.join takes the memoryview slices as they are
    return b"".join(
        [buf[:gstart], _key(_MODEL_GRAPH, 2), _enc_varint(graph_len), *pieces, buf[gend:]]
    )
