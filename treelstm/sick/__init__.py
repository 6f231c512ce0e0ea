r"""Semantic relatedness of sentence pairs (SICK): the model of Tai, Socher & Manning (2015), §4.2.

Each sentence is encoded to a vector: by a Child-Sum :class:`~treelstm.TreeLSTM` over its
dependency tree (the root's :math:`h`; input at every word), or, as the baseline, by ``nn.LSTM``
over its words (the last :math:`h`). A pair's representations :math:`h_L, h_R` are compared by a
small network that predicts a distribution over the scores :math:`1..K` (:class:`RelatednessModel`),
trained with a KL-divergence loss towards a sparse target distribution
(:func:`target_distribution`, :func:`relatedness_loss`). The prediction is the distribution's
expected score (:func:`expected_score`), evaluated by :func:`pearson`, :func:`spearman` (both from
``scipy.stats``) and :func:`mse` against the gold scores.

One module a concept: ``model`` (:class:`RelatednessModel`), ``targets`` (score <->
distribution, loss), ``metrics``, ``train`` (:func:`train_relatedness`,
:func:`evaluate_relatedness`), ``checkpoint`` (``best.pt``), ``config``
(:class:`RelatednessConfig`) and ``run`` (:func:`train_relatedness_run`: both encoders, one
table; ``python -m treelstm sick-train``). The data readers are in :mod:`treelstm.data`
(:func:`~treelstm.data.read_sick`, :func:`~treelstm.data.collate_pairs`, ...).
"""
from .checkpoint import load_relatedness_model, save_relatedness_checkpoint
from .config import DEFAULT_SICK_DATA, RelatednessConfig
from .metrics import mse, pearson, spearman
from .model import ENCODER_NAMES, ENCODERS, NUM_SCORE_CLASSES, RelatednessModel
from .run import (RUN_FILES, results_table, seeds_table, train_relatedness_run,
                  train_relatedness_seeds)
from .targets import expected_score, relatedness_loss, target_distribution
from .train import evaluate_relatedness, predict_scores, train_relatedness

__all__ = ["ENCODERS", "ENCODER_NAMES", "NUM_SCORE_CLASSES", "RelatednessModel",
           "target_distribution", "expected_score", "relatedness_loss", "pearson", "spearman",
           "mse", "predict_scores", "evaluate_relatedness", "train_relatedness",
           "save_relatedness_checkpoint", "load_relatedness_model", "DEFAULT_SICK_DATA",
           "RelatednessConfig", "RUN_FILES", "results_table", "train_relatedness_run",
           "train_relatedness_seeds", "seeds_table"]
