"""Data: sentiment trees (PTB/SST), dependency trees (CoNLL-U, SICK), vocabulary, vectors, batching.

Typical use::

    from treelstm.data import read_ptb, Vocab, load_vectors, collate_trees
    from treelstm.datasets import sentiment_dir              # the bundled treebank

    train = read_ptb(sentiment_dir() / "train.txt")          # list[SentimentTree]
    vocab = Vocab.build(tree.tokens for tree in train)
    inputs = collate_trees(train[:25], vocab)                # TreeInputs

Raw text and trees from other parsers (any labels; nltk needed for the trees)::

    from treelstm.data import tokenize, parse_bracketed

    tokens = tokenize("It's a lovely film (really).")        # SST's tokens
    tree = parse_bracketed("(ROOT (S (NP (DT The) (NN movie)) (VP (VBD was) (ADJP (JJ great)))))",
                           binarize=2)                       # a SentimentTree, labels -1

Dependency trees (a node per word, input at every node)::

    from treelstm.data import read_conllu, read_sick, collate_dependency_trees, collate_pairs

    trees = read_conllu("en_ewt-ud-dev.conllu")              # list[DependencyTree]
    pairs = read_sick("../shared/data/sick/train")           # list[RelatednessPair]
"""
from .conllu import iter_conllu, parse_conllu, read_conllu
from .dependency import (DependencyInputs, DependencyTree, collate_dependency_trees,
                         parents_from_heads)
from .collate import SequenceInputs, TreeInputs, collate_sequences, collate_trees
from .ptb import (IGNORE_INDEX, NUM_CLASSES, VIEWS, SentimentTree, binary_view, parse_ptb_line,
                  read_ptb, to_ptb_string)
from .sick import (ENTAILMENT_LABELS, SCORE_RANGE, PairInputs, RelatednessPair, SICKRecord,
                   collate_pairs, read_sick, read_sick_splits, read_sick_tsv)
from .nltk_trees import parse_bracketed, sentiment_tree_from_nltk, tree_batch_from_nltk
from .text import detokenize, tokenize
from .vectors import VectorCoverage, load_vectors
from .vocab import Vocab

__all__ = [
    "IGNORE_INDEX", "NUM_CLASSES", "VIEWS", "SentimentTree", "binary_view", "parse_ptb_line",
    "read_ptb", "to_ptb_string",
    "Vocab",
    "VectorCoverage", "load_vectors",
    "SequenceInputs", "TreeInputs", "collate_sequences", "collate_trees",
    "DependencyTree", "DependencyInputs", "parents_from_heads", "collate_dependency_trees",
    "read_conllu", "iter_conllu", "parse_conllu",
    "SCORE_RANGE", "ENTAILMENT_LABELS", "RelatednessPair", "SICKRecord", "PairInputs",
    "read_sick", "read_sick_splits", "read_sick_tsv", "collate_pairs",
    "tokenize", "detokenize", "parse_bracketed", "sentiment_tree_from_nltk", "tree_batch_from_nltk",
]
