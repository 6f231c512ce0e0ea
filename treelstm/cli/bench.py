"""``bench``: the speed benchmark, ``benchmarks/bench.py`` of the source checkout, which is not
part of the installed package."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional, Sequence, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

BENCH_HELP = "speed benchmark: native, DGL, nn.LSTM, LSTMCell loop, recursion (its own --help)"


def bench_command(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """``python -m treelstm bench``: runs ``benchmarks/bench.py`` of the source checkout this
    package is imported from, with its own command line (``--help``). The benchmark is not part
    of the installed package: without a checkout, one line says so (exit status 2)."""
    import importlib.util
    from pathlib import Path

    prog = prog or "python -m treelstm bench"
    root = Path(__file__).resolve().parents[2]  # treelstm/cli/bench.py -> the checkout
    script = root / "benchmarks" / "bench.py"
    if not (script.is_file() and (root / "setup.cfg").is_file()):
        print(f"{prog}: the speed benchmark is benchmarks/bench.py of the source repository, not "
              "part of the installed package; run it from a checkout: python "
              "benchmarks/bench.py --help", file=sys.stderr)
        return 2
    if not {"-h", "--help"} & set(argv or ()):
        from .guard import check_kernels

        refused = check_kernels(prog)
        if refused is not None:
            return refused
    # a spec with a loader: script is an existing .py file
    spec = cast("ModuleSpec", importlib.util.spec_from_file_location("treelstm_bench", script))
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    cast("Loader", spec.loader).exec_module(bench)  # imports DGL etc. only when benchmarking
    bench.main(argv, prog)
    return 0
