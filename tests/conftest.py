import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helper modules (toy_task) next to the tests

import os  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would flood the captured test output
os.environ.setdefault("MPLBACKEND", "Agg")
