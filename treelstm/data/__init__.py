"""Data for sentiment trees: PTB/SST reader, vocabulary, word vectors, batching.

Typical use::

    from treelstm.data import read_ptb, Vocab, load_vectors, collate_trees

    train = read_ptb("data/sentiment/train.txt")             # list[SentimentTree]
    vocab = Vocab.build(tree.tokens for tree in train)
    inputs = collate_trees(train[:25], vocab)                # TreeInputs
"""
from .collate import SequenceInputs, TreeInputs, collate_sequences, collate_trees
from .ptb import (IGNORE_INDEX, NUM_CLASSES, VIEWS, SentimentTree, binary_view, parse_ptb_line,
                  read_ptb, to_ptb_string)
from .vectors import VectorCoverage, load_vectors
from .vocab import Vocab

__all__ = [
    "IGNORE_INDEX", "NUM_CLASSES", "VIEWS", "SentimentTree", "binary_view", "parse_ptb_line",
    "read_ptb", "to_ptb_string",
    "Vocab",
    "VectorCoverage", "load_vectors",
    "SequenceInputs", "TreeInputs", "collate_sequences", "collate_trees",
]
