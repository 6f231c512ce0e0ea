"""The library's settings and names that the parsers show, without importing the library.

Building a parser (and ``--help``) must not load torch, but :class:`~treelstm.training.TrainConfig`,
:data:`~treelstm.training.COMPARE_ROWS`, :class:`~treelstm.sick.RelatednessConfig` and
:mod:`treelstm.predict` live in modules that do. Their values are repeated here;
``tests/test_cli.py`` checks each against the library's, so that the two cannot drift apart.
"""
from __future__ import annotations

from types import SimpleNamespace

from ..datasets import sentiment_dir, sick_sample_dir

#: :data:`treelstm.training.DEFAULT_DATA`: the bundled synthetic treebank.
DEFAULT_DATA = str(sentiment_dir())
#: :data:`treelstm.training.MAX_SEED` (numpy's global RNG takes 32-bit seeds).
MAX_SEED = 2 ** 32 - 1

#: The defaults of :class:`treelstm.training.TrainConfig`, field by field.
TRAIN_DEFAULTS = SimpleNamespace(
    model="treelstm", data=DEFAULT_DATA, view="fine", embed_dim=300, hidden_size=150,
    num_layers=1, cell="nary", backend="native", bidirectional=False, dropout=0.5, lr=0.05,
    weight_decay=1e-4, batch_size=25, epochs=10, seed=0, embeddings=None,
    freeze_embeddings=False, phrase_loss=True, max_train=None, clip_grad_norm=None,
    device="auto", embedding_lr=None, patience=None)

#: :data:`treelstm.training.COMPARE_ROWS`: row name -> label, in its order.
COMPARE_ROW_LABELS = {"treelstm": "Tree-LSTM", "treelstm-root": "Tree-LSTM, root labels only",
                      "childsum": "Child-Sum Tree-LSTM",
                      "bitreelstm": "Bidirectional Tree-LSTM", "lstm": "LSTM",
                      "bilstm": "Bidirectional LSTM", "lstm2": "2-layer LSTM"}
#: :data:`treelstm.training.DEFAULT_COMPARE_ROWS`.
DEFAULT_COMPARE_ROWS = ("treelstm", "treelstm-root", "lstm")

#: :data:`treelstm.sick.ENCODERS`.
SICK_ENCODERS = ("treelstm", "lstm")
#: The defaults of :class:`treelstm.sick.RelatednessConfig`, field by field.
SICK_DEFAULTS = SimpleNamespace(
    data=str(sick_sample_dir()), models=SICK_ENCODERS, epochs=10, seed=0, max_train=None,
    embed_dim=300, hidden_size=150, similarity_size=50, lr=0.05, weight_decay=1e-4,
    batch_size=25, embeddings=None, freeze_embeddings=False, device="cpu")

#: :data:`treelstm.predict.FORMATS` and the keys of :data:`treelstm.predict.DTYPES`.
PREDICT_FORMATS = ("auto", "ptb", "jsonl", "text")
PREDICT_DTYPES = ("bf16", "fp16")
