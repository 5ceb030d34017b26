"""RVD's ensemble spread under sampler and training variants (not a table of the paper).

    python experiments/table3.py --scale cpu-small --out out/table3 [--data out/table1/data/karman.zarr]

Rows: the RVD of table 1 sampled with DDIM eta 0 (the `cpu-small` setting), DDIM eta 1 and DDPM over all N steps
(one trained model), and RVD retrained with one key changed: ``model.sigma = 0.05`` and
``diffusion.prediction = eps``. See experiments/paper_tables.py and experiments/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(table=3))
