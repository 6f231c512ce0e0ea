"""What labelling raw text costs in accuracy: SST test, one Tree-LSTM checkpoint given the gold
trees, the trees of a parser trained on SST's own trees, and two trivial shapes, beside the LSTM
baseline on the same raw sentences.

    python benchmarks/text_accuracy.py --tree runs/sst-tree5/best.pt --lstm runs/sst-lstm5/best.pt \\
        --parser runs/parser/parser.pt

SST ships tokens, not raw text: each test sentence's raw text is made with
:func:`treelstm.data.detokenize` and read back with :func:`treelstm.data.tokenize` (the same tokens
for all 2,210 test sentences; ``benchmarks/tokenizer_roundtrip.py``), so the raw-text rows see
exactly the gold rows' words. Root accuracy: fine (5 classes) on every sentence; binary from the
fine model's probabilities on the non-neutral roots (as ``compare``: positive iff
p(3) + p(4) > p(0) + p(1)). Parser quality: unlabeled
bracketing F1 against the gold trees (spans of length >= 2 without the whole sentence, micro
over the corpus, evalb-style).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from treelstm.data import detokenize, read_ptb, tokenize
from treelstm.parse import balanced, bracket_f1, load_parser, right_branching
from treelstm.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sst"


def accuracy(predictor: Predictor, items: list, gold_trees: list) -> tuple[float, float]:
    """Fine root accuracy on all, binary (from fine) on the non-neutral roots, in %."""
    results = list(predictor.predict(items, batch_size=256, format="text"))
    gold = [tree.root_label for tree in gold_trees]
    fine = sum(r.label == g for r, g in zip(results, gold)) / len(gold)
    # as compare: positive iff p(3) + p(4) > p(0) + p(1), on the non-neutral roots
    kept = [(sum(r.probs[3:]) > sum(r.probs[:2]), g > 2) for r, g in zip(results, gold) if g != 2]
    binary = sum(p == g for p, g in kept) / len(kept)
    return 100 * fine, 100 * binary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", required=True, help="a Tree-LSTM checkpoint (best.pt)")
    parser.add_argument("--lstm", required=True, help="an LSTM checkpoint (best.pt)")
    parser.add_argument("--parser", required=True, help="parser.pt from 'parser train'")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SST directory")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)

    gold = read_ptb(args.data / f"{args.split}.txt")
    texts = [detokenize(tree.tokens) for tree in gold]
    sentences = [tokenize(text) for text in texts]
    same = sum(s == tree.tokens for s, tree in zip(sentences, gold))
    span_parser, _ = load_parser(args.parser)
    start = time.perf_counter()
    parsed = span_parser.parse(sentences)
    parse_seconds = time.perf_counter() - start
    shapes = {"gold trees": gold, "trained parser": parsed,
              "right-branching": [right_branching(s) for s in sentences],
              "balanced": [balanced(s) for s in sentences]}
    tree_model = Predictor.from_checkpoint(args.tree)
    lstm = Predictor.from_checkpoint(args.lstm)

    print(f"SST {args.split}: {len(gold)} sentences, re-tokenized raw text identical to SST's "
          f"tokens for {same}; parsed in {parse_seconds:.1f} s "
          f"({len(gold) / parse_seconds:.0f} sentences/s)")
    print("| input to the model | unlabeled F1 | fine root | binary root |")
    print("|---|---:|---:|---:|")
    for name, trees in shapes.items():
        f1 = "100.0" if name == "gold trees" else f"{100 * bracket_f1(gold, trees)['f1']:.1f}"
        fine, binary = accuracy(tree_model, trees, gold)
        print(f"| Tree-LSTM, {name} | {f1} | {fine:.1f} | {binary:.1f} |")
    fine, binary = accuracy(lstm, texts, gold)
    print(f"| LSTM, raw text | n/a | {fine:.1f} | {binary:.1f} |")


if __name__ == "__main__":
    main()
