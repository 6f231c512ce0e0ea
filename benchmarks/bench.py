"""Tree-LSTM speed benchmark; see ``python benchmarks/bench.py --help`` and :mod:`treelstm.bench`.

Examples::

    python benchmarks/bench.py                                   # generated SST-like trees
    python benchmarks/bench.py --data /path/to/sst --json bench.json
    python benchmarks/bench.py --quick                           # a smoke test of a few seconds
"""
import sys

from treelstm.bench import main

if __name__ == "__main__":
    main(sys.argv[1:])
