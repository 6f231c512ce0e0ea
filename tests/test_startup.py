"""Start-up: ``python -m treelstm [COMMAND] --help`` and ``import treelstm`` load none of the heavy
packages (torch, numpy, scipy, nltk, matplotlib, dgl), which take seconds to import. Checked on
the modules ``python -X importtime`` lists, not on the time (timed tests are not reliable on a
shared machine; ``benchmarks/startup.py`` measures the time)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "numpy", "scipy", "nltk", "matplotlib", "dgl"}
COMMANDS = ["train", "eval", "compare", "predict", "sick-train", "sick-eval", "parser", "parse"]
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def imported_modules(*arguments: str) -> tuple[set, subprocess.CompletedProcess]:
    """The modules ``python -X importtime *arguments`` imports (stderr parsed), and the run."""
    done = subprocess.run([sys.executable, "-X", "importtime", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    modules = {match.group(1) for match in map(_IMPORT_LINE.match, done.stderr.splitlines())
               if match}
    return modules, done


def heavy(modules: set) -> set:
    return {name for name in modules if name.split(".")[0] in HEAVY}


def test_importtime_lines_are_parsed():
    """The check below would pass vacuously if no line were recognised."""
    modules, done = imported_modules("-c", "import json")
    assert done.returncode == 0 and "json" in modules and "json.decoder" in modules


# (not "bench": it runs benchmarks/bench.py, a script of the checkout, which imports torch to
# build its own --help; a benchmark's start-up does not matter)
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_heavy_package(command):
    arguments = ["-m", "treelstm"] + ([command] if command else []) + ["--help"]
    modules, done = imported_modules(*arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m treelstm")
    assert "treelstm.cli.main" in modules
    assert heavy(modules) == set()


def test_import_treelstm_loads_no_torch_until_a_model_is_asked_for():
    modules, done = imported_modules("-c", "import treelstm, treelstm.cli")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "treelstm" in modules and heavy(modules) == set()
    modules, done = imported_modules(
        "-c", "import sys, treelstm; from treelstm import TreeBatch; "
              "assert treelstm.TreeLSTM.__module__ == 'treelstm.models'; "
              "assert 'torch' in sys.modules")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch" in modules


def test_public_names_load_from_their_modules():
    import treelstm
    from treelstm import baseline, batch, cells, classifier, models, predict

    expected = {"TreeBatch": batch.TreeBatch, "ChildSumTreeLSTMCell": cells.ChildSumTreeLSTMCell,
                "NaryTreeLSTMCell": cells.NaryTreeLSTMCell, "TreeLSTM": models.TreeLSTM,
                "TreeLSTMClassifier": classifier.TreeLSTMClassifier,
                "LSTMClassifier": baseline.LSTMClassifier, "Predictor": predict.Predictor}
    assert set(treelstm.__all__) == set(expected) | {"__version__"}
    for name, value in expected.items():
        assert getattr(treelstm, name) is value
        assert name in dir(treelstm)
    assert isinstance(treelstm.__version__, str)
    with pytest.raises(AttributeError, match="module 'treelstm' has no attribute 'Nothing'"):
        treelstm.Nothing


def test_submodules_load_as_attributes_on_first_use():
    """``import treelstm; treelstm.models.TreeLSTM`` worked when the package imported its
    modules eagerly; it still does."""
    done = subprocess.run([sys.executable, "-c", "import treelstm; print(treelstm.models.TreeLSTM."
                           "__name__, treelstm.data.read_ptb.__name__)"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["TreeLSTM", "read_ptb"]
