"""Writes onnx.proto3 beside this script from the `onnx` wheel's onnx.proto (proto2).

The wheel ships only the proto2 schema; onnx's own converter rewrites it as proto3 so
that prost generates plain (non-Option) fields. Usage: `python convert.py` with the
`onnx` package installed (`pip install onnx`); the version used is recorded in the
first line of the output.
"""

import os

import onnx
from onnx.gen_proto import convert_to_proto3

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.join(os.path.dirname(onnx.__file__), "onnx.proto")
with open(source, encoding="utf-8") as f:
    lines = f.read().splitlines()
with open(os.path.join(here, "onnx.proto3"), "w", encoding="utf-8") as f:
    f.write(f"// Converted from onnx {onnx.__version__} onnx.proto by convert.py\n")
    f.write("\n".join(convert_to_proto3(lines)) + "\n")
