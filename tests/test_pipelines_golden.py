"""The compiled IR of each DAG equals its reviewed golden file (``make golden`` rewrites)."""

import pytest
from golden_ir import golden_path, normalised_ir

from pipelines.compile import PIPELINES


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_compiled_ir_matches_the_golden_file(name):
    golden = golden_path(name)
    assert golden.exists(), f"{golden} missing: run `make golden` and review the diff"
    assert normalised_ir(name) == golden.read_text(), (
        f"the compiled IR of {name} changed: run `make golden` and review the diff of {golden}"
    )
