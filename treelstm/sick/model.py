r"""The relatedness model of Tai, Socher & Manning (2015), §4.2: a sentence encoder read twice
and a small similarity network over the pair of encodings."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..checks import check_positive_ints, is_int
from ..data.sick import SCORE_RANGE, PairInputs
from ..models import TreeLSTM

__all__ = ["ENCODERS", "ENCODER_NAMES", "NUM_SCORE_CLASSES", "RelatednessModel"]

#: Sentence encoders of :class:`RelatednessModel`.
ENCODERS = ("treelstm", "lstm")
#: How tables name the encoders (Tai et al., Table 3).
ENCODER_NAMES = {"treelstm": "Dependency Tree-LSTM (Child-Sum)", "lstm": "LSTM"}
#: SICK scores run over 1..5.
NUM_SCORE_CLASSES = int(SCORE_RANGE[1])


class RelatednessModel(nn.Module):
    r"""Relatedness of two sentences: sentence encoder + similarity network (Tai et al. 2015).

    .. math::
        h_\times = h_L \odot h_R, \qquad h_+ = |h_L - h_R|

        h_s = \sigma\big(W^{(\times)} h_\times + W^{(+)} h_+ + b^{(h)}\big)

        \hat{p}_\theta = \mathrm{softmax}\big(W^{(p)} h_s + b^{(p)}\big), \qquad
        \hat{y} = r^\top \hat{p}_\theta, \quad r = [1, 2, \dots, K]

    where :math:`h_L, h_R` are the two sentences' encodings: the root :math:`h` of a Child-Sum
    Tree-LSTM over the dependency tree (``encoder="treelstm"``), or the last :math:`h` of an
    ``nn.LSTM`` over the words (``encoder="lstm"``). One encoder (one set of weights) reads both
    sentences.

    Args:
        vocab_size: rows of the embedding; row ``padding_idx`` stays zero.
        embed_dim: word vector size. Default: 300
        hidden_size: the encoder's state size :math:`H`. Default: 150
        similarity_size: the size of :math:`h_s`. Default: 50
        num_classes: :math:`K`, the number of score classes. Default: 5
        encoder: ``"treelstm"`` or ``"lstm"``. Default: ``"treelstm"``
        num_layers: stacked encoder layers. Default: 1
        padding_idx: the embedding's padding row. Default: 0

    Inputs: inputs
        - **inputs**: :class:`~treelstm.data.PairInputs` of ``B`` pairs
          (:func:`~treelstm.data.collate_pairs`).

    Outputs: log_probs
        - **log_probs** of shape `(B, K)`: :math:`\log \hat{p}_\theta` per pair;
          :func:`~treelstm.sick.expected_score` turns it into :math:`\hat{y}`.

    Attributes:
        similarity: ``nn.Linear(2H, similarity_size)``, the weights :math:`[W^{(\times)},
            W^{(+)}]` side by side (it is applied to :math:`[h_\times; h_+]`) and :math:`b^{(h)}`.
        output: ``nn.Linear(similarity_size, K)``, :math:`W^{(p)}` and :math:`b^{(p)}`.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 300, hidden_size: int = 150,
                 similarity_size: int = 50, num_classes: int = NUM_SCORE_CLASSES,
                 encoder: str = "treelstm", num_layers: int = 1,
                 padding_idx: Optional[int] = 0) -> None:
        super().__init__()
        check_positive_ints("RelatednessModel", vocab_size=vocab_size, embed_dim=embed_dim,
                            hidden_size=hidden_size, similarity_size=similarity_size,
                            num_layers=num_layers)
        if not is_int(num_classes) or num_classes < 2:
            raise ValueError(f"RelatednessModel: num_classes must be an integer >= 2; got "
                             f"{num_classes!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"RelatednessModel: encoder must be one of {ENCODERS}; got "
                             f"{encoder!r}")
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.similarity_size = similarity_size
        self.num_classes = num_classes
        self.encoder = encoder
        self.num_layers = num_layers
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        if encoder == "treelstm":
            self.tree_lstm = TreeLSTM(embed_dim, hidden_size, num_layers=num_layers,
                                      cell="childsum")
        else:
            self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.similarity = nn.Linear(2 * hidden_size, similarity_size)
        self.output = nn.Linear(similarity_size, num_classes)

    @property
    def config(self) -> dict:
        """The constructor arguments, from which ``RelatednessModel(**model.config)`` builds the
        same architecture."""
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim,
                "hidden_size": self.hidden_size, "similarity_size": self.similarity_size,
                "num_classes": self.num_classes, "encoder": self.encoder,
                "num_layers": self.num_layers, "padding_idx": self.padding_idx}

    def encode(self, inputs: PairInputs) -> Tensor:
        """``[2B, H]``: the encoding of every sentence, left sentences first."""
        if self.encoder == "treelstm":
            _, (h_n, _) = self.tree_lstm(self.embedding(inputs.token_ids), inputs.batch)
            return h_n[-1]
        packed = pack_padded_sequence(self.embedding(inputs.sequence_ids), inputs.lengths.cpu(),
                                      batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n[-1]

    def forward(self, inputs: PairInputs) -> Tensor:
        """``[B, K]`` log-probabilities of the scores for a :class:`~treelstm.data.PairInputs` from
        :func:`~treelstm.data.collate_pairs`."""
        if not isinstance(inputs, PairInputs):
            raise TypeError(f"RelatednessModel: expected PairInputs (from collate_pairs); got "
                            f"{type(inputs).__name__}")
        encoded = self.encode(inputs)
        h_left, h_right = encoded[:inputs.num_pairs], encoded[inputs.num_pairs:]
        h_mult = h_left * h_right
        h_abs_diff = (h_left - h_right).abs()
        h_s = torch.sigmoid(self.similarity(torch.cat([h_mult, h_abs_diff], dim=1)))
        return F.log_softmax(self.output(h_s), dim=1)

    def extra_repr(self) -> str:
        return f"encoder={self.encoder!r}, similarity_size={self.similarity_size}, " \
               f"num_classes={self.num_classes}"
