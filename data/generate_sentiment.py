#!/usr/bin/env python
"""Generate a small synthetic sentiment treebank in SST format (see data/README.md).

Sentences such as "the plot is dull but the acting is not bad ." come with a binary tree and a
sentiment label 0..4 on every node, computed bottom-up by a few composition rules (negation,
intensifiers, "too", conjunction, contrast). The same words occur in both orders around "but",
and negation scope is given by the tree, so word counts alone do not determine the label.

    python data/generate_sentiment.py --seed 0 --out treelstm/datasets/sentiment

writes train.txt, dev.txt and test.txt (one tree per line). The output depends only on the
arguments. No tree occurs twice across the three files.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Optional, Union

# ---------------------------------------------------------------------------------- lexicon
# Sentiment values run from -2 (very negative) to +2 (very positive); label = value + 2.
ADJECTIVES = {
    2: ["great", "wonderful", "brilliant", "superb", "excellent", "gorgeous", "masterful",
        "delightful", "terrific", "stunning"],
    1: ["good", "nice", "fine", "decent", "charming", "pleasant", "funny", "clever", "solid",
        "engaging", "likable", "warm"],
    0: ["long", "short", "quiet", "loud", "familiar", "simple", "old", "modern", "european",
        "american"],
    -1: ["bad", "dull", "boring", "weak", "slow", "flat", "bland", "clumsy", "tedious", "silly",
         "messy", "forgettable"],
    -2: ["awful", "terrible", "dreadful", "horrible", "painful", "unwatchable", "atrocious",
         "abysmal", "insufferable", "hideous"],
}
NOUNS = ["film", "movie", "plot", "story", "script", "cast", "acting", "ending", "soundtrack",
         "dialogue", "direction", "pacing", "camera", "premise", "humor", "lead", "finale",
         "score", "editing", "sequel"]
DETERMINERS = ["the", "this", "its"]
VERBS = ["is", "was", "seems", "feels"]
INTENSIFIERS = ["very", "really", "truly", "extremely", "remarkably", "incredibly"]
NEGATORS = ["not", "hardly", "never"]


# ------------------------------------------------------------------------ composition rules
def clip(value: int) -> int:
    return max(-2, min(2, value))


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


def negate(value: int) -> int:
    """"not great" -> -1, "not good" -> -1, "not bad" -> +1: flip and soften to strength 1."""
    return -sign(value)


def intensify(value: int) -> int:
    """"very good" -> +2, "very bad" -> -2; neutral stays neutral."""
    return sign(value) * min(2, abs(value) + 1)


def too(value: int) -> int:
    """"too long" -> -1 (only generated with neutral adjectives)."""
    return -1


def conjoin(left: int, right: int) -> int:
    """"good and funny" -> +2, "good and boring" -> 0: the sum, clipped."""
    return clip(left + right)


def contrast(before: int, after: int) -> int:
    """"good but boring" -> -1: the part after "but" (or the main clause after "although")
    decides, unless it is neutral."""
    return after if after != 0 else before


# ---------------------------------------------------------------------------------- trees
# A node is (value, word) for a preterminal or (value, left, right) for an internal node.
Node = Union[tuple[int, str], tuple[int, "Node", "Node"]]


def leaf(word: str, value: int = 0) -> Node:
    return (value, word)


def join(value: int, left: Node, right: Node) -> Node:
    return (value, left, right)


def to_line(node: Node) -> str:
    if len(node) == 2:
        return f"({node[0] + 2} {node[1]})"
    return f"({node[0] + 2} {to_line(node[1])} {to_line(node[2])})"


def num_words(node: Node) -> int:
    return 1 if len(node) == 2 else num_words(node[1]) + num_words(node[2])


class Grammar:
    """Random sentences with compositional labels; all randomness from one ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def choice(self, options: list):
        return self.rng.choice(options)

    def adjective(self, values=(-2, -1, 0, 1, 2)) -> Node:
        value = self.choice(list(values))
        return leaf(self.choice(ADJECTIVES[value]), value)

    def adjective_phrase(self, depth: int, negation: bool = True) -> Node:
        """AP -> ADJ | INT ADJ | INT INT ADJ | too ADJ0 | NEG AP | AP and AP | AP but AP."""
        roll = self.rng.random()
        if depth <= 0 or roll < 0.30:
            return self.adjective()
        if roll < 0.45:
            # Intensifiers modify a polar adjective, or another intensified one ("really very").
            if self.rng.random() < 0.85:
                inner = self.adjective((-2, -1, 1, 2))
            else:
                inner = self.adjective((-2, -1, 1, 2))
                inner = join(intensify(inner[0]), leaf(self.choice(INTENSIFIERS)), inner)
            return join(intensify(inner[0]), leaf(self.choice(INTENSIFIERS)), inner)
        if roll < 0.52:
            return join(too(0), leaf("too"), self.adjective((0,)))
        if roll < 0.72:
            if not negation:  # no double negation ("not never good")
                return self.adjective()
            inner = self.adjective_phrase(depth - 1, negation=False)
            return join(negate(inner[0]), leaf(self.choice(NEGATORS)), inner)
        left = self.adjective_phrase(depth - 1)
        right = self.adjective_phrase(depth - 1)
        if roll < 0.84:
            return join(conjoin(left[0], right[0]), left, join(right[0], leaf("and"), right))
        return join(contrast(left[0], right[0]), left, join(right[0], leaf("but"), right))

    def noun_phrase(self) -> Node:
        """NP -> DET N | DET (ADJ N); an adjective in the subject colours the NP."""
        noun = leaf(self.choice(NOUNS))
        if self.rng.random() < 0.3:
            adjective = self.adjective()
            noun = join(adjective[0], adjective, noun)
        return join(noun[0], leaf(self.choice(DETERMINERS)), noun)

    def clause(self) -> Node:
        """S -> NP VP, VP -> V AP; the predicate decides unless it is neutral."""
        subject = self.noun_phrase()
        predicate = self.adjective_phrase(depth=2)
        verb_phrase = join(predicate[0], leaf(self.choice(VERBS)), predicate)
        return join(contrast(subject[0], verb_phrase[0]), subject, verb_phrase)

    def sentence(self) -> Node:
        """S | S and S | S but S | although S , S; then an optional final period."""
        roll = self.rng.random()
        first = self.clause()
        if roll < 0.45:
            body = first
        else:
            second = self.clause()
            if roll < 0.60:
                body = join(conjoin(first[0], second[0]), first,
                            join(second[0], leaf("and"), second))
            elif roll < 0.85:
                body = join(contrast(first[0], second[0]), first,
                            join(second[0], leaf("but"), second))
            else:
                body = join(contrast(first[0], second[0]),
                            join(first[0], leaf("although"), first),
                            join(second[0], leaf(","), second))
        if self.rng.random() < 0.8:
            body = join(body[0], body, leaf("."))
        return body


def generate_split(grammar: Grammar, size: int, seen: set[str], max_words: int) -> list[str]:
    """``size`` distinct tree lines not in ``seen`` (which is updated), with root classes
    balanced: each tree's root class is drawn uniformly first, then sentences are drawn until
    one has that class."""
    lines: list[str] = []
    while len(lines) < size:
        target = grammar.rng.randrange(5) - 2
        while True:
            tree = grammar.sentence()
            line = to_line(tree)
            if tree[0] == target and num_words(tree) <= max_words and line not in seen:
                break
        seen.add(line)
        lines.append(line)
    return lines


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a synthetic sentiment treebank (SST format: one labelled binary "
                    "tree per line) whose labels follow compositional rules.")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("treelstm/datasets/sentiment"),
                        help="output directory for train.txt, dev.txt, test.txt "
                             "(default: treelstm/datasets/sentiment)")
    parser.add_argument("--train", type=int, default=3000, help="training trees (default: 3000)")
    parser.add_argument("--dev", type=int, default=500, help="development trees (default: 500)")
    parser.add_argument("--test", type=int, default=500, help="test trees (default: 500)")
    parser.add_argument("--max-words", type=int, default=25,
                        help="longest sentence kept, in tokens (default: 25)")
    args = parser.parse_args(argv)
    for name in ("train", "dev", "test"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.max_words < 6:
        parser.error(f"--max-words must be >= 6 (the shortest sentence), got {args.max_words}")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    grammar = Grammar(random.Random(args.seed))
    seen: set[str] = set()
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = generate_split(grammar, getattr(args, split), seen, args.max_words)
        with open(args.out / f"{split}.txt", "w", encoding="utf-8", newline="\n") as file:
            file.writelines(line + "\n" for line in lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
