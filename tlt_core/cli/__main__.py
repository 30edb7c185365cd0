import sys

from tlt_core.cli import main

sys.exit(main())
