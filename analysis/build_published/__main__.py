"""``python -m analysis.build_published [REFERENCE_DIR] [OUT_DIR]``: rebuild traces/published/
(defaults: the reference folder ``reference_dir()`` finds, and traces/published)."""
import sys

from analysis.build_published import main

sys.exit(main())
