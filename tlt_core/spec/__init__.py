"""Spec files shared by every network: protobuf text-format parsing, located errors and the
dataset-convert spec.

- `load_convert_spec(path)` / `parse_convert_spec(text)`: the dataset-convert spec
  (``dataset_convert.proto``) as a `ConvertSpec`.
- `textparse` (parsing with line locations), `check.Checker` (located validation),
  `overrides.set_by_path` (dotted-path edits), `listexpr` (bracketed list fields), `archs`
  (backbone families and their nlayers / freeze blocks).

A network's experiment spec lives with the network (``tlt_core.networks.<name>``) and is
loaded through ``Network.load_spec``. Every problem raises `tlt_core.errors.SpecError` with
``path:line: field: message``.
"""

from tlt_core.spec.archs import ARCHITECTURES, ArchInfo
from tlt_core.spec.convert import ConvertSpec, load_convert_spec, parse_convert_spec
from tlt_core.spec.listexpr import format_list, parse_list

__all__ = [
    "ARCHITECTURES",
    "ArchInfo",
    "ConvertSpec",
    "format_list",
    "load_convert_spec",
    "parse_convert_spec",
    "parse_list",
]
