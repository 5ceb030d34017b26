"""Table 1 of the RVD paper on the vortex street: `python experiments/table1.py --scale cpu-small --out out/table1`.

See experiments/paper_tables.py (scales, rows, outputs) and experiments/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(table=1))
