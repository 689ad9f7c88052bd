"""Owns load-time rewrites of ONNX graphs that ONNX Runtime's own optimiser misses (today: exact-erf GELU fusion).

image_safety_s, as exported by PyTorch, spells every GELU as five nodes: Div(x, √2) → Erf → Add(1) → Mul(0.5) → Mul(x).
ORT 1.32 does not fuse this pattern for this graph, so each GELU costs five passes over a large activation and,
worse, breaks the NCHWc layout its convolutions run in (a reorder before and after every GELU). Replacing the
five nodes with ORT's `com.microsoft.Gelu` kernel (the same exact-erf formula) cut the model's CPU time by about a
quarter, with probabilities within 2e-7 of the original graph (tests/models/vision/test_onnx_graph.py).

The rewrite works on the protobuf wire format directly, so the `onnx` package (not a dependency) is not needed:
only NodeProto entries of the top-level graph are replaced and unused initializers dropped; every other byte of
the model (weights, metadata) is copied unchanged. Anything it does not recognise is left alone.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

# Protobuf wire types and the ONNX field numbers used here (onnx/onnx.proto3).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MODEL_GRAPH, _MODEL_OPSET = 7, 8
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_OUTPUT = 1, 5, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTR, _NODE_DOMAIN = 1, 2, 3, 4, 5, 7
_TENSOR_TYPE, _TENSOR_FLOATS, _TENSOR_NAME, _TENSOR_RAW = 2, 4, 8, 9
_VALUE_NAME = 1
_FLOAT = 1
# Control-flow ops carry subgraphs that may read top-level values: never drop initializers then.
_SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int, bytes]]:
    """(field number, wire type, payload, the field's raw bytes) for each field of one message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        payload: bytes | int
        if wire == _VARINT:
            payload, pos = _varint(buf, pos)
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            payload, pos = buf[pos:pos + size], pos + size
        elif wire == _I64:
            payload, pos = buf[pos:pos + 8], pos + 8
        elif wire == _I32:
            payload, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, payload, buf[start:pos]


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


@dataclass
class _Node:
    raw: bytes
    op: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _parse_node(raw_field: bytes, payload: bytes) -> _Node:
    node = _Node(raw_field)
    for number, _, value, _ in _fields(payload):
        if isinstance(value, int):
            continue
        if number == _NODE_INPUT:
            node.inputs.append(value.decode())
        elif number == _NODE_OUTPUT:
            node.outputs.append(value.decode())
        elif number == _NODE_OP:
            node.op = value.decode()
        elif number == _NODE_DOMAIN:
            node.domain = value.decode()
    return node


def _scalar(payload: bytes) -> tuple[str, float | None]:
    """(name, value) of a TensorProto; the value only for a one-element float32 tensor."""
    name, dtype, floats, raw = "", 0, b"", b""
    for number, _, value, _ in _fields(payload):
        if number == _TENSOR_NAME and isinstance(value, bytes):
            name = value.decode()
        elif number == _TENSOR_TYPE and isinstance(value, int):
            dtype = value
        elif number == _TENSOR_FLOATS and isinstance(value, bytes):
            floats += value
        elif number == _TENSOR_RAW and isinstance(value, bytes):
            raw = value
    data = raw or floats
    if dtype == _FLOAT and len(data) == 4:
        return name, float(struct.unpack("<f", data)[0])
    return name, None


def _gelu_node(x: str, out: str, name: str) -> bytes:
    payload = (_len_field(_NODE_INPUT, x.encode()) + _len_field(_NODE_OUTPUT, out.encode())
               + _len_field(_NODE_NAME, name.encode()) + _len_field(_NODE_OP, b"Gelu")
               + _len_field(_NODE_DOMAIN, b"com.microsoft"))
    return _len_field(_GRAPH_NODE, payload)


def _match_gelu(div: _Node, consumers: dict[str, list[_Node]], consts: dict[str, float | None],
                ) -> list[_Node] | None:
    """The five nodes of x·0.5·(1 + erf(x/√2)) starting at `div`, or None."""

    def only(node: _Node, op: str) -> _Node | None:
        users = consumers.get(node.outputs[0], []) if len(node.outputs) == 1 else []
        return users[0] if len(users) == 1 and users[0].op == op and not users[0].domain else None

    def other(node: _Node, known: str) -> str | None:
        rest = [i for i in node.inputs if i != known]
        return rest[0] if len(node.inputs) == 2 and len(rest) == 1 else None

    def is_const(name: str | None, value: float) -> bool:
        found = consts.get(name or "")
        return found is not None and math.isclose(found, value, rel_tol=1e-6)

    if div.op != "Div" or div.domain or len(div.inputs) != 2 or not is_const(div.inputs[1], math.sqrt(2.0)):
        return None
    x = div.inputs[0]
    erf = only(div, "Erf")
    add = only(erf, "Add") if erf else None
    half = only(add, "Mul") if add else None
    mul = only(half, "Mul") if half else None
    if not (erf and add and half and mul):
        return None
    if not (is_const(other(add, erf.outputs[0]), 1.0) and is_const(other(half, add.outputs[0]), 0.5)):
        return None
    if other(mul, half.outputs[0]) != x:
        return None
    return [div, erf, add, half, mul]


def fuse_gelu(model: bytes) -> tuple[bytes, int]:
    """(rewritten model, number of GELUs fused); the input unchanged when there is nothing to fuse."""
    graph_payload: bytes | None = None
    for number, _, value, _ in _fields(model):
        if number == _MODEL_GRAPH and isinstance(value, bytes):
            graph_payload = value
    if graph_payload is None:
        return model, 0
    nodes: list[_Node] = []
    consts: dict[str, float | None] = {}
    outputs: set[str] = set()
    for number, _, value, raw in _fields(graph_payload):
        if not isinstance(value, bytes):
            continue
        if number == _GRAPH_NODE:
            nodes.append(_parse_node(raw, value))
        elif number == _GRAPH_INIT:
            name, scalar = _scalar(value)
            consts[name] = scalar
        elif number == _GRAPH_OUTPUT:
            outputs.update(v.decode() for n, _, v, _ in _fields(value) if n == _VALUE_NAME and isinstance(v, bytes))
    consumers: dict[str, list[_Node]] = {}
    for node in nodes:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node)
    replaced: dict[int, bytes] = {}
    dropped: set[int] = set()
    for node in nodes:
        chain = _match_gelu(node, consumers, consts)
        # Intermediate values must not be graph outputs, and a node may belong to one pattern only.
        if chain is None or any(id(n) in dropped for n in chain) or \
                any(n.outputs[0] in outputs for n in chain[:-1]):
            continue
        dropped.update(id(n) for n in chain)
        replaced[id(chain[-1])] = _gelu_node(chain[0].inputs[0], chain[-1].outputs[0], f"fused_gelu_{len(replaced)}")
    if not replaced:
        return model, 0
    kept = [n for n in nodes if id(n) not in dropped or id(n) in replaced]
    used = {name for n in kept for name in n.inputs} | outputs
    keep_all_inits = any(n.op in _SUBGRAPH_OPS for n in nodes)
    node_iter = iter(kept)
    new_graph = bytearray()
    for number, _, value, raw in _fields(graph_payload):
        if number == _GRAPH_NODE:
            # Nodes keep their (topological) order; each original slot takes the next kept node.
            continue
        if number == _GRAPH_INIT and isinstance(value, bytes) and not keep_all_inits:
            name, _ = _scalar(value)
            if name not in used:
                continue
        new_graph += raw
    body = b"".join(replaced.get(id(n), n.raw) for n in node_iter)
    new_graph = bytearray(body) + new_graph  # node order is all that matters; other fields are unordered
    out = bytearray()
    has_ms_opset = False
    for number, _, value, raw in _fields(model):
        if number == _MODEL_GRAPH:
            out += _len_field(_MODEL_GRAPH, bytes(new_graph))
            continue
        if number == _MODEL_OPSET and isinstance(value, bytes):
            has_ms_opset |= any(n == 1 and v == b"com.microsoft" for n, _, v, _ in _fields(value))
        out += raw
    if not has_ms_opset:
        out += _len_field(_MODEL_OPSET, _len_field(1, b"com.microsoft") + _encode_varint(2 << 3 | _VARINT)
                          + _encode_varint(1))
    return bytes(out), len(replaced)
