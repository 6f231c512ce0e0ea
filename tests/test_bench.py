"""The benchmark command: a smoke run with --quick (no timing assertions), its JSON and table."""
import json

import pytest
import torch

from conftest import HAS_DGL
from helpers import load_script
from treelstm import TreeBatch

bench = load_script("benchmarks/bench.py")  # a script of the repository, not of the package


def test_quick_run_writes_json_and_prints_a_table(tmp_path, capsys):
    path = tmp_path / "bench.json"
    result = bench.main(["--quick", "--json", str(path)])
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    assert set(result) == {"config", "environment", "data", "results"}
    config = result["config"]
    assert config["baseline"] == "lstm" and config["batch_sizes"] == [1, 4]
    assert result["environment"]["threads"] == 2
    rows = result["results"]
    assert len(rows) == len(bench.METHODS) * len(bench.MODES) * 2
    for row in rows:
        assert set(row) >= {"method", "mode", "batch_size", "status", "notes", "capped",
                            "trees_measured", "iterations", "seconds_per_step", "trees_per_s",
                            "ratio_to_lstm", "peak_memory_bytes"}
        if row["method"] == "dgl" and not HAS_DGL:
            assert row["status"] == "unavailable" and row["trees_per_s"] is None
            continue
        assert row["status"] == "ok", row
        assert row["trees_per_s"] > 0 and row["ratio_to_lstm"] > 0
        assert len(row["seconds_per_step"]) == 1  # --quick: one repeat
        assert row["peak_memory_bytes"] is None or row["peak_memory_bytes"] >= 0
    assert all(row["ratio_to_lstm"] == 1.0 for row in rows if row["method"] == "lstm")
    table = capsys.readouterr().out
    assert "train (forward+backward)" in table and "inference (forward, no_grad)" in table
    for method in bench.METHODS:
        assert method in table


def test_generated_trees_are_binary_with_leaves_first_and_sst_like_lengths():
    trees = bench.random_sst_like_trees(400, seed=1)
    stats = bench.tree_stats(trees)
    assert 16 < stats["mean_tokens"] < 23  # SST train: 19.1
    for tree in trees[:50]:
        n = tree.num_leaves
        assert len(tree.parent) == 2 * n - 1
        children = {}
        for v, p in enumerate(tree.parent):
            if p >= 0:
                children.setdefault(p, []).append(tree.position[v])
        assert set(children) == set(range(n, 2 * n - 1))  # leaves 0..n-1 have no children
        assert all(sorted(slots) == [0, 1] for slots in children.values())
    TreeBatch.from_parents([t.parent for t in trees], [t.position for t in trees]).check_arity(2)


def test_reads_ptb_directory(tmp_path):
    (tmp_path / "train.txt").write_text("(3 (2 It) (4 (2 's) (3 (2 a) (4 (4 lovely) (2 film)))))\n"
                                       "(1 (2 Not) (1 good))\n")
    trees = bench.read_tree_dir(tmp_path)
    assert [t.num_leaves for t in trees] == [5, 2]
    assert trees[1].parent == [2, 2, -1] and trees[1].position == [0, 1, -1]
    with pytest.raises(ValueError, match="not a directory"):
        bench.read_tree_dir(tmp_path / "missing")


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit):
        bench.parse_args(["--methods", "native,cudnn"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--batch-sizes", "0"])


def test_an_unknown_or_absent_device_is_a_usage_error(capsys):
    """--device names torch does not know, or CUDA on a machine without it: one usage line,
    exit 2, no traceback."""
    bad = ["tpu:x"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in bad:
        with pytest.raises(SystemExit) as exit_info:
            bench.parse_args(["--device", device, "--quick"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"--device {device}" in err.replace("'", "") and "Traceback" not in err


def test_treelstm_bench_command_runs_the_script_of_the_checkout(capsys):
    from treelstm.__main__ import main

    assert main(["bench", "--quick", "--methods", "lstm", "--modes", "inference",
                 "--no-memory"]) == 0
    assert "inference (forward, no_grad)" in capsys.readouterr().out


def test_treelstm_bench_command_without_a_checkout_says_so(tmp_path, monkeypatch, capsys):
    from treelstm.__main__ import main
    from treelstm.cli import bench

    # as installed: the package's parent directory holds no benchmarks/ (site-packages)
    monkeypatch.setattr(bench, "__file__", str(tmp_path / "treelstm" / "cli" / "bench.py"))
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "not part of the installed package" in err and "benchmarks/bench.py" in err


def test_level_cost_trees_and_table(capsys):
    """benchmarks/level_cost.py: its right-branching tree of n words has n - 1 levels above the
    leaves, and a smoke run prints both tables with a fixed part and a part per level."""
    level_cost = load_script("benchmarks/level_cost.py")
    for num_words in (2, 3, 9):
        tree = level_cost.right_branching(num_words)
        batch = TreeBatch.from_parents([tree.parent], [tree.position])
        assert batch.num_levels - 1 == num_words - 1 and tree.num_leaves == num_words
    assert level_cost.main(["--words", "2,3", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("fixed ms") == 2 and out.count("\nlstm ") == 2
    with pytest.raises(SystemExit):
        level_cost.main(["--words", "5"])  # one length: no line to fit


def test_interleaved_prints_a_ratio_and_refuses_a_folder_without_the_benchmark(tmp_path):
    """benchmarks/interleaved.py: one line with the engine's and nn.LSTM's times and their ratio;
    a --checkout without benchmarks/bench.py is a usage error (exit 2), nothing measured."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "interleaved.py"
    done = subprocess.run([sys.executable, str(script), "--batch-size", "2", "--mode", "train",
                           "--method", "native", "--turns", "1", "--turn-time", "0.01"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    match = re.fullmatch(r".* B=2 native train: engine ([\d.]+) ms, nn\.LSTM ([\d.]+) ms, "
                         r"ratio ([\d.]+)x\n", done.stdout)
    assert match and all(float(value) > 0 for value in match.groups()), done.stdout
    refused = subprocess.run([sys.executable, str(script), "--checkout", str(tmp_path)],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "no benchmarks/bench.py there" in refused.stderr
    assert refused.stdout == ""
