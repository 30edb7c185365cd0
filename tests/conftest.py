"""Shared fixtures."""

from __future__ import annotations

import pytest
from s3server import s3_bucket, s3_server  # noqa: F401  (real S3 server fixtures)

from tlt_core.data.sample import SampleData


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> SampleData:
    """A small generated KITTI dataset (24 training, 8 validation frames), made once.

    Read-only for tests: copy it before changing anything in it. Layout and spec files:
    see :mod:`tlt_core.data.sample`.
    """
    from tlt_core.stages.sample_data import generate

    return generate(tmp_path_factory.mktemp("sample") / "data", num_train=24, num_val=8, seed=0)
