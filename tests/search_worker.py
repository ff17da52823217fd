"""A search in a process of its own, for the kill-and-resume test:
python search_worker.py STATE HISTORY SEED EVALUATIONS"""

import logging
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
sys.path.insert(0, __file__.rsplit("/", 2)[0])  # this checkout's package, not an installed one

from helpers import blob_dataset, tiny_settings  # noqa: E402

from bractivate.search import run_search  # noqa: E402


logging.basicConfig(level=logging.INFO)
state, history, seed, evaluations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run_search(blob_dataset(), tiny_settings(seed=seed, evaluations=evaluations), state, history)
print("done")
