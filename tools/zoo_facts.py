"""Count what ``edgeirst zoo`` shows for every registered model and record it in
``edgeirst/models/zoo_facts.json`` (run after adding a model or changing an architecture;
``tests/test_zoo_cli.py::test_recorded_facts_are_the_counts`` fails until you do).

    python tools/zoo_facts.py            # rewrite the file (about a minute on one CPU thread)
"""

from __future__ import annotations

import json
from importlib import resources

import torch

from edgeirst.cli.zoo import FACTS_FILE, FACTS_SIZES, GFLOPS_MEANS, count_facts
from edgeirst.io import write_text
from edgeirst.models import list_models


def main() -> None:
    torch.set_num_threads(1)
    facts = {
        "about": f"edgeirst zoo's counts at (side, input channels) {list(FACTS_SIZES)}: params per input-channel "
                 f"count; macs per 'side x channels' = {GFLOPS_MEANS}. Written by tools/zoo_facts.py.",
        "models": {name: count_facts(name) for name in list_models()},
    }
    path = write_text(str(resources.files("edgeirst").joinpath(*FACTS_FILE)), json.dumps(facts, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
