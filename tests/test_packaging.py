"""The package as a user installs it: a wheel (not the checkout) in a fresh virtual environment,
used from another directory."""
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--quiet", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [path] = out.glob("treelstm-*.whl")
    return path


def test_wheel_holds_the_bundled_data_and_typing_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for split in ("train", "dev", "test"):
        assert f"treelstm/datasets/sentiment/{split}.txt" in names
        for side in ("a.toks", "b.toks", "a.parents", "b.parents", "sim.txt"):
            assert f"treelstm/datasets/sick_sample/{split}/{side}" in names
    assert "treelstm/py.typed" in names
    assert "treelstm/engine/kernels.c" in names  # compiled on first use (engine/kernels.py)
    assert not any(name.startswith(("tests/", "data/", "examples/")) for name in names)


@pytest.mark.slow
def test_installed_wheel_trains_and_predicts_from_any_directory(wheel, tmp_path):
    """A fresh venv with the wheel; its dependencies come from this environment's
    site-packages through a .pth line (a path only: the checkout's editable install is not
    activated there), so nothing is downloaded."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index",
                           "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def run(*args):
        return subprocess.run([str(python), *args], cwd=work, capture_output=True, text=True,
                              timeout=300, env=env)

    where = run("-c", "import treelstm, treelstm.datasets as d; print(treelstm.__file__); "
                      "print(d.sentiment_dir())")
    assert where.returncode == 0, where.stderr
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout
    trained = run("-m", "treelstm", "train", "--epochs", "1", "--max-train", "100",
                  "--embed-dim", "8", "--hidden-size", "6", "--out", "run", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert (work / "run" / "best.pt").is_file()
    test_file = Path(where.stdout.splitlines()[1]) / "test.txt"
    predicted = run("-m", "treelstm", "predict", "run/best.pt", str(test_file), "-o", "out.jsonl",
                    "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    assert len((work / "out.jsonl").read_text().splitlines()) == 500
