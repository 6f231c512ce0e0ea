"""A small tour of treelstm: build a batch of trees, run both executors, compare with nn.LSTM.

Run with ``make demo`` or ``python examples/demo.py``.
"""
import argparse
import time

import torch
from torch import nn

from treelstm import TreeBatch, TreeLSTM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    # Two trees: a root with two leaves, and the same shape with the root listed last.
    batch = TreeBatch.from_parents([[-1, 0, 0], [2, 2, -1]])
    print(batch)
    print("roots:", batch.roots.tolist(), " depth:", batch.depth.tolist(),
          " height:", batch.height.tolist())

    try:
        from treelstm.dgl import import_dgl
        import_dgl()
        backends = ["native", "dgl"]
    except ImportError as error:
        print(f"DGL backend skipped: {error}")
        backends = ["native"]

    for cell, arity in (("childsum", None), ("nary", 2)):
        model = TreeLSTM(input_size=8, hidden_size=4, num_layers=2, cell=cell, arity=arity)
        x = torch.randn(batch.num_nodes, 8)
        results = {}
        for backend in backends:
            model.backend = backend
            output, (h_n, c_n) = model(x, batch)
            results[backend] = output
            print(f"{cell:8s} {backend:6s} output {tuple(output.shape)}, h_n {tuple(h_n.shape)}, "
                  f"root h of tree 0: {[round(v, 4) for v in h_n[-1, 0].tolist()]}")
        if "dgl" in results:
            gap = (results["native"] - results["dgl"]).abs().max().item()
            print(f"{cell:8s} native vs DGL: max |difference| = {gap:.2e}")

    # A Child-Sum Tree-LSTM on a chain tree is an nn.LSTM.
    lstm = nn.LSTM(8, 4, num_layers=2, dtype=torch.float64)
    model = TreeLSTM(8, 4, num_layers=2, dtype=torch.float64)
    model.load_state_dict(lstm.state_dict())
    length = 12
    chain = TreeBatch.from_parents([[t + 1 for t in range(length - 1)] + [-1]])
    x = torch.randn(length, 8, dtype=torch.float64)
    output, _ = model(x, chain)
    lstm_output, _ = lstm(x.unsqueeze(1))
    print(f"chain of {length}: TreeLSTM vs nn.LSTM max |difference| = "
          f"{(output - lstm_output[:, 0]).abs().max().item():.1e}")

    # Leaves-only input over a random batch of 256 binary trees, timed once for a feel.
    parents = []
    for _ in range(256):
        n_leaves = int(torch.randint(2, 30, ()).item())
        parent, frontier = [-1] * (2 * n_leaves - 1), list(range(n_leaves))
        next_id = n_leaves
        while len(frontier) > 1:
            k = int(torch.randint(0, len(frontier) - 1, ()).item())
            left, right = frontier[k], frontier[k + 1]
            parent[left] = parent[right] = next_id
            frontier[k:k + 2] = [next_id]
            next_id += 1
        parents.append(parent)
    big = TreeBatch.from_parents(parents)
    leaves = torch.nonzero(big.num_children == 0).flatten()
    model = TreeLSTM(300, 150, cell="nary", arity=2)
    start = time.perf_counter()
    with torch.no_grad():
        model(torch.randn(len(leaves), 300), big, input_index=leaves)
    print(f"{big.num_trees} binary trees ({big.num_nodes} nodes, {big.num_levels} levels): "
          f"one native forward in {1000 * (time.perf_counter() - start):.1f} ms")


if __name__ == "__main__":
    main()
