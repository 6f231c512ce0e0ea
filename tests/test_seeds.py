"""Several seeds of one setting (treelstm.seeds): compare --seeds (one process and worker
processes, --resume, --view binary) and sick-train --seeds give every run and its mean ± sample
standard deviation."""
import json
import logging
import statistics
from pathlib import Path

import pytest

from treelstm.__main__ import compare_command, sick_train_command
from treelstm.seeds import seed_dir, spread, summary
from treelstm.training import TrainConfig, compare, train

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "treelstm" / "datasets" / "sentiment"

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.one_thread


def _tiny(**kwargs):
    options = dict(data=str(DATA), embed_dim=8, hidden_size=6, batch_size=10, epochs=1,
                   max_train=40, device="cpu")
    options.update(kwargs)
    return TrainConfig(**options)


def test_summary_and_spread_use_the_sample_standard_deviation():
    values = [0.4, 0.5, 0.9]
    assert summary(values) == {"mean": statistics.mean(values),
                               "std": statistics.stdev(values), "values": values}
    assert summary([2]) == {"mean": 2.0, "std": 0.0, "values": [2.0]}
    assert spread(values, scale=100) == \
        f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"
    assert spread([0.4666], scale=100) == "46.7"
    assert spread([0.4, None]) == "n/a" and spread([]) == "n/a"
    assert seed_dir(Path("out"), 3) == Path("out/seed-3")
    with pytest.raises(ValueError, match="at least one value"):
        summary([])


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """compare of two rows over seeds 1 and 2, in this process: (out, result)."""
    out = tmp_path_factory.mktemp("compare") / "run"
    return out, compare(_tiny(), out, rows=["treelstm", "lstm"], seeds=[1, 2])


def test_compare_over_seeds_keeps_every_run_and_their_mean_and_std(two_seeds):
    out, result = two_seeds
    assert result["seeds"] == [1, 2] and "results" not in result
    for row in ("treelstm", "lstm"):
        runs = result["runs"][row]
        assert [runs[seed]["config"]["seed"] for seed in (1, 2)] == [1, 2]
        tests = [runs[seed]["test"]["root_acc"] for seed in (1, 2)]
        assert result["summary"][row]["fine root test"] == summary(tests)
        for seed in (1, 2):
            assert (seed_dir(out / row, seed) / "best.pt").is_file()
    assert "all-phrase test" not in result["summary"]["lstm"]  # n/a for the LSTM
    row = next(line for line in result["table"].splitlines() if line.startswith("| Tree-LSTM"))
    tests = [result["runs"]["treelstm"][seed]["test"]["root_acc"] for seed in (1, 2)]
    assert spread(tests, scale=100) in row and "±" in row
    assert "seeds 1, 2 (mean ± sample standard deviation" in result["caption"]
    saved = json.loads((out / "compare.json").read_text())
    assert saved["summary"] == result["summary"]
    assert set(saved["runs"]["lstm"]) == {"1", "2"}
    assert (out / "compare.md").read_text() == result["table"]


def test_compare_resume_tests_finished_runs_again_without_training(two_seeds):
    out, result = two_seeds
    checkpoint = seed_dir(out / "lstm", 1) / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        compare(_tiny(), out, rows=["lstm"], seeds=[1, 2])
    again = compare(_tiny(), out, rows=["lstm"], seeds=[1, 2], resume=True)
    assert checkpoint.stat().st_mtime_ns == before  # nothing trained
    for seed in (1, 2):
        assert again["runs"]["lstm"][seed]["test"]["root_acc"] == \
            result["runs"]["lstm"][seed]["test"]["root_acc"]
        assert again["runs"]["lstm"][seed]["history"] == result["runs"]["lstm"][seed]["history"]


def test_compare_in_worker_processes_trains_the_same_runs(two_seeds, tmp_path):
    """--jobs 2: each run in a spawned process gives the metrics of the same run in this one."""
    _, result = two_seeds
    parallel = compare(_tiny(), tmp_path, rows=["lstm"], seeds=[1, 2], jobs=2)
    for seed in (1, 2):
        mine, theirs = result["runs"]["lstm"][seed], parallel["runs"]["lstm"][seed]
        assert theirs["best_dev"]["root_acc"] == mine["best_dev"]["root_acc"]
        assert theirs["test"]["root_acc"] == mine["test"]["root_acc"]
        assert [r["train"]["loss"] for r in theirs["history"]] == \
            [r["train"]["loss"] for r in mine["history"]]


def test_compare_binary_view_and_paper_sizes(tmp_path):
    result = compare(_tiny(view="binary"), rows=["lstm2", "childsum"], sizes="paper")
    header = result["table"].splitlines()[2]
    assert header.startswith("| model | binary root dev | binary root test | binary phrase")
    configs = {row: metrics["config"] for row, metrics in result["results"].items()}
    assert configs["lstm2"]["num_layers"] == 2 and configs["lstm2"]["hidden_size"] == 108
    assert configs["childsum"]["cell"] == "childsum" and configs["childsum"]["hidden_size"] == 168
    assert all(config["view"] == "binary" for config in configs.values())
    assert "binary root accuracy on dev" in result["caption"]


def test_compare_refuses_bad_seeds_jobs_and_sizes():
    with pytest.raises(ValueError, match="seeds must be"):
        compare(_tiny(), rows=["lstm"], seeds=[1, 1])
    with pytest.raises(ValueError, match="jobs must be"):
        compare(_tiny(), rows=["lstm"], jobs=0)
    with pytest.raises(ValueError, match="sizes must be"):
        compare(_tiny(), rows=["lstm"], sizes="huge")
    with pytest.raises(ValueError, match="exclude each other"):
        compare(_tiny(), rows=["lstm"], resume=True, overwrite=True)


@pytest.mark.parametrize("seeds", ["1,1", "a,b", "", "-1", "1,,2", "\u0663"])
def test_compare_seeds_option_refuses_bad_lists(seeds, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare_command(["--seeds", seeds, "--quiet"])
    assert exit_info.value.code == 2
    assert "--seeds" in capsys.readouterr().err


def test_compare_resume_and_overwrite_together_are_refused(capsys, tmp_path):
    with pytest.raises(SystemExit):
        compare_command(["--resume", "--overwrite", "--out", str(tmp_path), "--quiet"])
    assert "exclude each other" in capsys.readouterr().err


def test_sick_train_over_seeds(tmp_path, capsys):
    out = tmp_path / "sick"
    small = ["--epochs", "1", "--embed-dim", "8", "--hidden-size", "6", "--similarity-size", "4",
             "--max-train", "40", "--quiet", "--out", str(out)]
    assert sick_train_command(small + ["--seeds", "3,4"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["seeds"] == [3, 4]
    for encoder in ("treelstm", "lstm"):
        tests = [report["runs"][str(seed)]["results"][encoder]["test"]["pearson"]
                 for seed in (3, 4)]
        assert report["summary"][encoder]["test r"] == summary(tests)
        assert (seed_dir(out, 3) / encoder / "best.pt").is_file()
    assert report["runs"]["3"]["settings"]["seed"] == 3
    printed = capsys.readouterr().out
    assert "±" in printed and (out / "results.md").read_text().strip() == printed.strip()
    with pytest.raises(SystemExit) as refused:  # out holds a run
        sick_train_command(small + ["--seeds", "3,4"])
    assert refused.value.code == 2 and "already holds a run" in capsys.readouterr().err
    # --resume keeps a finished seed and trains one killed before its results
    kept = (seed_dir(out, 3) / "results.json").stat().st_mtime_ns
    (seed_dir(out, 4) / "results.json").unlink()
    assert sick_train_command(small + ["--seeds", "3,4", "--resume"]) == 0
    assert (seed_dir(out, 3) / "results.json").stat().st_mtime_ns == kept
    again = json.loads((out / "results.json").read_text())
    for encoder in ("treelstm", "lstm"):  # the same runs, seed 4 trained again (timing aside)
        for column in ("dev r", "test r", "test rho", "test MSE", "best epoch"):
            assert again["summary"][encoder][column] == report["summary"][encoder][column]
    with pytest.raises(SystemExit):  # other settings are not mixed in
        sick_train_command(small + ["--seeds", "3,4", "--resume", "--lr", "0.2"])
    assert "a run with other settings (lr)" in capsys.readouterr().err
    assert sick_train_command(small[:-1] + [str(tmp_path / "one")]) == 0  # one seed
    with pytest.raises(SystemExit):  # seeds into a folder of one seed's run
        sick_train_command(small[:-1] + [str(tmp_path / "one"), "--seeds", "1", "--overwrite"])
    assert "holds a single-seed run" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # and one seed into a folder of seeds
        sick_train_command(small + ["--overwrite"])
    assert "holds runs per seed" in capsys.readouterr().err


def test_a_worker_whose_compare_process_died_stops_after_its_epoch(tmp_path, monkeypatch):
    """kill -9 of compare leaves its workers orphaned: each stops at the end of its epoch, with
    checkpoint.pt written, so that --resume finds no run still writing."""
    from treelstm.training import comparison, load_checkpoint

    parents = iter([4242, 4242, 1, 1, 1])  # the parent's pid, then init's: compare is gone
    monkeypatch.setattr(comparison.os, "getppid", lambda: next(parents))
    with pytest.raises(SystemExit, match="compare's process 4242 is gone; stopped after epoch 2"):
        comparison._train_in_worker("lstm", 0, _tiny(epochs=5).to_dict(), tmp_path, False,
                                    False, 1, logging.WARNING, 4242)
    assert load_checkpoint(tmp_path / "checkpoint.pt").epoch == 2


def _square_or_fail(value):
    """A run for run_in_processes: dies without a result at -9, fails at -1."""
    import os

    if value == -9:
        os._exit(9)
    if value == -1:
        raise ValueError("bad value")
    return value * value


def test_run_in_processes_gives_each_result_and_names_failed_and_killed_runs():
    from treelstm.training.workers import run_in_processes

    tasks = [(f"run {k}", (k,)) for k in range(4)]
    assert dict(run_in_processes(_square_or_fail, tasks, jobs=2)) == \
        {f"run {k}": k * k for k in range(4)}
    with pytest.raises(ValueError, match="^run -1: bad value$"):
        list(run_in_processes(_square_or_fail, [("run 2", (2,)), ("run -1", (-1,))], jobs=2))
    # a process killed without a result: an error naming the run, not a hang
    with pytest.raises(RuntimeError, match=r"run -9: its process ended \(exit code 9\) without"):
        list(run_in_processes(_square_or_fail, [("run -9", (-9,))], jobs=1))


def test_compare_names_the_run_that_failed():
    with pytest.raises(FloatingPointError, match="^LSTM, seed 2: epoch 1: the weights"):
        compare(_tiny(lr=1e30, max_train=20), rows=["lstm"], seeds=[2])


def test_compare_resume_refuses_before_training_anything(tmp_path):
    """A run that cannot resume (other settings) is found before any run is trained on."""
    compare(_tiny(), tmp_path, rows=["treelstm"], seeds=[1])
    with pytest.raises(ValueError, match="treelstm/seed-1/checkpoint.pt: cannot resume"):
        compare(_tiny(hidden_size=7), tmp_path, rows=["lstm", "treelstm"], seeds=[1],
                resume=True)
    assert not (tmp_path / "lstm").exists()  # the LSTM was not trained first
    with pytest.raises(ValueError, match="trained with no --patience, this run has --patience 1"):
        compare(_tiny(patience=1), tmp_path, rows=["treelstm"], seeds=[1], resume=True)


def test_compare_refuses_to_mix_one_seed_and_several_in_one_folder(tmp_path):
    compare(_tiny(), tmp_path / "single", rows=["lstm"])
    with pytest.raises(ValueError, match="holds a single-seed run"):
        compare(_tiny(), tmp_path / "single", rows=["lstm"], seeds=[0, 1], overwrite=True)
    compare(_tiny(), tmp_path / "several", rows=["lstm"], seeds=[1])
    with pytest.raises(ValueError, match=r"holds runs per seed \(seed-\*/\)"):
        compare(_tiny(), tmp_path / "several", rows=["lstm"], resume=True)


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_writes(tmp_path):
    import os
    import subprocess
    import sys

    from treelstm.files import LOCK_NAME, run_lock

    # another process holds the folder's lock (flock), as a running compare or train does
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from treelstm.files import run_lock\n"
        "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"),
        str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match=f"another run \\(process {holder.pid}\\) is "
                                                  f"writing there \\(it holds {LOCK_NAME}\\)"):
            compare(_tiny(), tmp_path, rows=["lstm"], seeds=[1])
        with pytest.raises(FileExistsError, match="another run"):
            train(_tiny(), tmp_path)
        with pytest.raises(SystemExit):  # sick-train too, before it trains anything
            sick_train_command(["--epochs", "1", "--max-train", "20", "--quiet", "--out",
                                str(tmp_path)])
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: the system dropped its lock; the pid left in the file is no matter
    (tmp_path / LOCK_NAME).write_text("1\n")  # even a live process's pid (init's)
    compare(_tiny(), tmp_path, rows=["lstm"], seeds=[1])
    with run_lock(tmp_path):  # this process may take its own lock again
        with run_lock(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())



def test_compare_command_reports_a_killed_run_in_one_line(monkeypatch, capsys, tmp_path):
    from treelstm.training import comparison

    def killed(*args, **kwargs):
        raise RuntimeError("Tree-LSTM, seed 0: its process ended (exit code -9) without a result")

    monkeypatch.setattr(comparison, "_train_in_processes", killed)
    with pytest.raises(SystemExit) as exit_info:
        compare_command(["--rows", "treelstm", "--seeds", "0,1", "--jobs", "2", "--max-train",
                         "20", "--epochs", "1", "--quiet", "--out", str(tmp_path)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().endswith("error: Tree-LSTM, seed 0: its process "
                                                    "ended (exit code -9) without a result")
