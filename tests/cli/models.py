"""Small ONNX models built with onnx.helper for the command-line tests."""
from onnx import TensorProto, helper

OPSET = [helper.make_opsetid("", 17)]


def make(nodes, inputs, outputs, name="g", opsets=OPSET, **kw):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=kw.pop("initializer", None))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8, **kw)
    return model


def add_model(dtype=TensorProto.FLOAT, shape=("N", 3)):
    """c = a + b, with a symbolic batch dimension."""
    return make(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        [helper.make_tensor_value_info("a", dtype, shape),
         helper.make_tensor_value_info("b", dtype, shape)],
        [helper.make_tensor_value_info("c", dtype, shape)],
        name="add_graph",
        producer_name="onyx-tests",
        producer_version="1.0",
    )


def identity_model(dtype, shape=None, out_name="y"):
    return make(
        [helper.make_node("Identity", ["x"], [out_name])],
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info(out_name, dtype, shape)],
    )


def split_to_sequence_model():
    """x (float [6, 2]) -> SplitToSequence(split=[1, 2, 3]) -> seq."""
    split = helper.make_tensor("split", TensorProto.INT64, [3], [1, 2, 3])
    return make(
        [helper.make_node("SplitToSequence", ["x", "split"], ["seq"], axis=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 2])],
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)],
        initializer=[split],
    )


def sequence_input_model():
    """A sequence of float tensors -> ConcatFromSequence(axis 0), and its length."""
    return make(
        [helper.make_node("ConcatFromSequence", ["s"], ["cat"], axis=0),
         helper.make_node("SequenceLength", ["s"], ["len"])],
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cat", TensorProto.FLOAT, ["M", 2]),
         helper.make_tensor_value_info("len", TensorProto.INT64, [])],
    )


def string_model():
    """A string input, compared with a constant: (s == "cat"), and s itself."""
    cat = helper.make_tensor("cat", TensorProto.STRING, [], [b"cat"])
    return make(
        [helper.make_node("Equal", ["s", "cat"], ["is_cat"]),
         helper.make_node("Identity", ["s"], ["same"])],
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("is_cat", TensorProto.BOOL, ["N"]),
         helper.make_tensor_value_info("same", TensorProto.STRING, ["N"])],
        initializer=[cat],
        opsets=[helper.make_opsetid("", 19)],
    )


def pair_model(dtype=TensorProto.FLOAT, shape=("N", 3)):
    """Two inputs a, b passed through to outputs c, d (only Identity, so the
    command-line tests do not depend on arithmetic kernels)."""
    return make(
        [helper.make_node("Identity", ["a"], ["c"]), helper.make_node("Identity", ["b"], ["d"])],
        [helper.make_tensor_value_info("a", dtype, shape),
         helper.make_tensor_value_info("b", dtype, shape)],
        [helper.make_tensor_value_info("c", dtype, shape),
         helper.make_tensor_value_info("d", dtype, shape)],
        name="pair",
    )


def identity_of_type(type_proto, opset=17):
    """x -> Identity -> y for any TypeProto (sequence, optional, ...)."""
    return make(
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_value_info("x", type_proto)],
        [helper.make_value_info("y", type_proto)],
        opsets=[helper.make_opsetid("", opset)],
    )
