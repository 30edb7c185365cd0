"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes "oneDNN custom operations are on ..." and absl's
"All log messages before absl::InitializeLog() ..." straight to file descriptor 2 while it
loads, whatever TF_CPP_MIN_LOG_LEVEL says. The CLI promises one line per error, so the
import runs with fd 2 captured and everything but those known lines is passed on.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"(oneDNN custom operations are on"
    r"|All log messages before absl::InitializeLog\(\) is called"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|cuda_(blas|dnn|fft)\.cc"
    r"|Could not find cuda drivers)"
)


def import_tensorflow_quietly() -> None:
    """Import tensorflow (and keras) once, dropping only the known start-up noise."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)
