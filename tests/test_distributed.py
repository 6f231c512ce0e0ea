"""Multi-process training (``torchrun ... --distributed``): 2 CPU processes with Gloo on
127.0.0.1 train the same weights as one process on the same global batches, uneven and empty
shares included; a distributed run resumes exactly; a clear error without torchrun."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from treelstm.training import TORCHRUN_VARIABLES, TrainConfig, load_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
# 21 training trees in batches of 5: shares of 3 and 2 trees, and a last batch of 1 tree where
# rank 1 has none.
SETTINGS = dict(epochs=2, embed_dim=16, hidden_size=16, batch_size=5, seed=5, device="cpu")
SPLIT_SIZES = {"train": 21, "dev": 12, "test": 12}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    """The first trees of each split of the bundled treebank (every process reads and evaluates all
    of them: the bundled files would take most of the time)."""
    directory = tmp_path_factory.mktemp("data")
    for split, size in SPLIT_SIZES.items():
        lines = (ROOT / "treelstm" / "datasets" / "sentiment" / f"{split}.txt").read_text().splitlines()
        (directory / f"{split}.txt").write_text("\n".join(lines[:size]) + "\n")
    return str(directory)


def _options(settings: dict) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _torchrun(*arguments: str, processes: int = 2) -> subprocess.CompletedProcess:
    """``torchrun arguments...`` with ``processes`` workers on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
               f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
               f"--master_port={_free_port()}", *arguments]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _single_process(out: Path, **settings) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(**settings), out)
    finally:
        torch.set_num_threads(threads)


def _assert_same_training(distributed: Path, single: Path, atol: float) -> None:
    got, expected = load_checkpoint(distributed), load_checkpoint(single)
    assert got.epoch == expected.epoch
    assert got.state_dict.keys() == expected.state_dict.keys()
    for name, value in expected.state_dict.items():
        torch.testing.assert_close(got.state_dict[name], value, atol=atol, rtol=0, msg=name)
    # AdaGrad's sums of squares grow into the hundreds: float32 rounding of a different
    # summation order (two processes) is relative (exact runs, atol=0, stay exact)
    for key, state in expected.optimizer["state"].items():
        torch.testing.assert_close(got.optimizer["state"][key]["sum"], state["sum"], atol=atol,
                                   rtol=0 if atol == 0 else 1e-6)
    for got_record, record in zip(got.extra["history"], expected.extra["history"]):
        assert got_record["train"]["loss"] == pytest.approx(record["train"]["loss"], rel=1e-5)
        assert got_record["train"]["root_acc"] == record["train"]["root_acc"]


def test_two_processes_train_what_one_does(tmp_path, data):
    settings = dict(SETTINGS, data=data, dropout=0.0)  # dropout masks are drawn per process
    result = _torchrun("-m", "treelstm", "train", "--distributed", "--quiet", "--threads=1",
                       f"--out={tmp_path / 'two'}", *_options(settings))
    _single_process(tmp_path / "one", **settings)
    _assert_same_training(tmp_path / "two" / "checkpoint.pt", tmp_path / "one" / "checkpoint.pt",
                          atol=1e-5)
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and metrics["test"] is not None
    # Only rank 0 prints its summary.
    assert result.stdout.count("test root accuracy") == 1


def test_distributed_resume_is_exact(tmp_path, data):
    """With dropout: each rank's RNG state is in checkpoint.pt, so the resumed run draws the
    same masks as the uninterrupted one."""
    # One launch (each costs seconds of imports): the workers run __main__ below.
    _torchrun(__file__, str(tmp_path), data)
    _assert_same_training(tmp_path / "resumed" / "checkpoint.pt",
                          tmp_path / "whole" / "checkpoint.pt", atol=0)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert resumed["best_dev"]["root_acc"] == whole["best_dev"]["root_acc"]
    assert resumed["test"]["root_acc"] == whole["test"]["root_acc"]


def test_distributed_without_torchrun_is_an_error(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"needs the environment variables .*torchrun "
                                         r"--nproc_per_node=2"):
        train(TrainConfig(**SETTINGS), distributed=True)


def test_distributed_cuda_index_must_be_local_rank(monkeypatch):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from treelstm.training.distributed import _distributed_device

    with pytest.raises(ValueError, match="cuda:LOCAL_RANK"):
        _distributed_device("cuda:1", local_rank=0)


def _resume_worker(out: Path, data: str) -> None:
    """A torchrun worker of test_distributed_resume_is_exact, in a process group of its own
    making: 2 epochs in out/whole; 1 epoch in out/resumed, then resumed to 2."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    settings = dict(SETTINGS, data=data, dropout=0.5)
    train(TrainConfig(**settings), out / "whole", distributed=True)
    train(TrainConfig(**dict(settings, epochs=1)), out / "resumed", distributed=True)
    train(TrainConfig(**settings), out / "resumed", resume=True, distributed=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _resume_worker(Path(sys.argv[1]), sys.argv[2])
