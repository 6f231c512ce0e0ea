"""Compatibility module: the relatedness model, targets, metrics and training now live in
:mod:`treelstm.sick` (one module a concept); import them from there."""
from .sick import (ENCODERS, NUM_SCORE_CLASSES, RelatednessModel, evaluate_relatedness,
                   expected_score, mse, pearson, predict_scores, relatedness_loss, spearman,
                   target_distribution, train_relatedness)

__all__ = ["ENCODERS", "NUM_SCORE_CLASSES", "RelatednessModel", "target_distribution",
           "expected_score", "relatedness_loss", "pearson", "spearman", "mse",
           "predict_scores", "evaluate_relatedness", "train_relatedness"]
