"""Round trip of SST's tokens through raw text: leaves -> detokenize -> tokenize.

For each sentence of a split, the tree's leaves are joined into a raw sentence with
:func:`treelstm.data.text.detokenize` and split again with :func:`treelstm.data.text.tokenize`;
prints, per split, how many sentences come back identical and the first differences (what SST
has, what the tokenizer gave, and the raw text in between).

Examples::

    python benchmarks/tokenizer_roundtrip.py                    # test split of ../shared/data/sst
    python benchmarks/tokenizer_roundtrip.py --split train dev test --backend python
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Optional

from treelstm.data.ptb import read_ptb
from treelstm.data.text import (_detokenize, _tokenize, _treebank_backend, _treebank_text,
                                _treebank_words)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sst"  # ../shared/data/sst from the repository
SPLITS = ("train", "dev", "test")
SHOWN_CHARS = 100


def backends(name: str):
    """``(treebank_words, treebank_text)``: nltk's (``"nltk"``), the pure-Python copy
    (``"python"``), or what :func:`tokenize` uses (``"auto"``)."""
    if name == "python":
        return _treebank_words, _treebank_text
    chosen = _treebank_backend()
    if name == "nltk" and chosen[0] is _treebank_words:
        raise SystemExit("tokenizer_roundtrip: --backend nltk, but nltk is not installed")
    return chosen


def differing_tokens(expected: list[str], got: list[str]) -> str:
    """The replaced, dropped and added tokens, as ``[SST] -> [got]`` pieces."""
    matcher = difflib.SequenceMatcher(a=expected, b=got, autojunk=False)
    return "; ".join(f"{expected[i1:i2]} -> {got[j1:j2]}"
                     for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def round_trip(path: Path, backend: str, shown: int) -> dict:
    """``{"sentences", "identical", "differences": [(line, tokens that differ, raw text)]}``."""
    words, text = backends(backend)
    trees = read_ptb(path)
    identical, differences = 0, []
    for line, tree in enumerate(trees, 1):
        raw = _detokenize(tree.tokens, text)
        tokens = _tokenize(raw, words)
        if tokens == tree.tokens:
            identical += 1
        elif len(differences) < shown:
            differences.append((line, differing_tokens(tree.tokens, tokens), raw))
    return {"sentences": len(trees), "identical": identical, "differences": differences}


def shorten(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def main(argv: Optional[list[str]] = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with SST's train.txt, dev.txt, test.txt "
                             "(default: %(default)s)")
    parser.add_argument("--split", nargs="+", choices=SPLITS, default=["test"],
                        help="split(s) to read (default: %(default)s)")
    parser.add_argument("--backend", choices=("auto", "nltk", "python"), default="auto",
                        help="Treebank tokenizer: nltk's, the pure-Python copy, or nltk if it is "
                             "installed (default: %(default)s)")
    parser.add_argument("--show", type=int, default=5,
                        help="differences to print per split (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.show < 0:
        parser.error(f"--show must be at least 0, got {args.show}")
    missing = [split for split in args.split if not (args.data / f"{split}.txt").is_file()]
    if missing:
        parser.error(f"no {', '.join(f'{split}.txt' for split in missing)} in {args.data}")

    results = {split: round_trip(args.data / f"{split}.txt", args.backend, args.show)
               for split in args.split}
    words, _ = backends(args.backend)
    print(f"data: {args.data.resolve()}; Treebank tokenizer: "
          f"{'pure-Python copy' if words is _treebank_words else 'nltk'}")
    print(f"{'split':<8}{'sentences':>10}{'identical':>11}{'share %':>10}")
    for split, result in results.items():
        share = 100 * result["identical"] / max(result["sentences"], 1)
        print(f"{split:<8}{result['sentences']:>10}{result['identical']:>11}{share:>10.2f}")
    for split, result in results.items():
        if result["differences"]:
            print(f"\nfirst differences in {split}.txt (line: SST -> round trip | raw text):")
        for line, tokens, raw in result["differences"]:
            print(f"  {line}: {tokens} | {shorten(raw)}")
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
