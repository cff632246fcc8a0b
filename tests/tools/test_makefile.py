"""The main job's command line in the Makefile: its config file and --set overrides load."""

import re
import shlex
from pathlib import Path

from detection.config import load_train_config

ROOT = Path(__file__).resolve().parents[2]


def _train_command() -> list[str]:
    """The words of `make run`'s tools/train_det.py line, continuation lines joined."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "tools/train_det.py" in ln)
    return shlex.split(re.sub(r"\$\(\w+\)", "X", line))


def test_make_run_trains_with_the_embedded_config_and_shrunk_selective_search():
    words = _train_command()
    config = ROOT / words[words.index("--config") + 1]
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    cfg = load_train_config(config, sets)  # raises on an unknown key or a bad value
    assert cfg.proposals.resize_longer == 320
    assert cfg.head.fc6 == 512  # the from-scratch recipe's, not the paper's 4096
