"""Unlabeled binary constituency parsing: tokenised sentences -> binary trees, learned from SST's
own trees, so that raw text can be given to the Tree-LSTM classifiers.

The parser is the span-based parser of Stern, Andreas & Klein (2017), "A Minimal Span-Based
Neural Constituency Parser" (ACL), in the form Kitaev & Klein (2018), "Constituency Parsing with
a Self-Attentive Encoder" (ACL) also use, without labels:

* each word is embedded; start and end sentinels are added; a BiLSTM reads the sequence, giving
  forward states ``f_k`` and backward states ``b_k`` (position 0 is the start sentinel, word ``t``
  is at position ``t``, the end sentinel at ``n + 1``);
* a span ``(i, j)``, ``0 <= i < j <= n`` (the words ``i+1 .. j``, between fenceposts ``i`` and
  ``j``), is represented by endpoint differences ``r(i, j) = [f_j - f_i ; b_{i+1} - b_{j+1}]``
  and scored by an MLP, ``s(i, j) = w2 . relu(W1 r(i, j) + c1) + c2``;
* a binary tree's score is the sum of its spans' scores. Every binary tree over ``n`` words has
  the same number of spans (``2n - 1``), so the best tree is exactly the one CKY finds:
  ``best(i, j) = s(i, j) + max_k best(i, k) + best(k, j)`` (:func:`cky`).

Training uses the published objective, the structured hinge loss with cost-augmented decoding
(Taskar et al. 2005, as in Stern et al. 2017, section 3): for the gold tree ``T*`` and the Hamming
cost ``D(T) = |spans of T not in T*|``, ``loss = max_T [s(T) + D(T)] - s(T*)`` (>= 0, as ``T*``
is a candidate with cost 0); the inner max is :func:`cky` on ``s + cost``. It trains the scores
that the decoder compares, tree against tree, and needs no extra hyper-parameter; a per-span
binary cross-entropy would train each span alone, for a decoder it never sees.

Vectorised in torch: a padded batch of sentences goes through the BiLSTM at once (packed), all
spans of all sentences through the MLP at once (``W1 r(i, j) = g_j - g_i`` with
``g_k = W1 [f_k ; -b_{k+1}]``, so the first layer runs per fencepost, not per span), and CKY loops
over span lengths only, each step over every sentence and span start at once, on the scores'
device (CPU or CUDA). Deterministic given a seed.

The package's modules, one concept each (import every public name from ``treelstm.parse``, as
before the split into modules):

* ``model``: :class:`SpanParser`, the BiLSTM and span MLP, and :meth:`SpanParser.parse`.
* ``cky``: :func:`cky` (:class:`CKYResult`), the exact decoder, and the binary tree from its
  splits.
* ``scores``: :func:`tree_spans`, the baseline trees (:func:`right_branching`,
  :func:`balanced`), evalb-style unlabeled bracket scores (:func:`bracket_f1`) and
  :func:`evaluate_parser`.
* ``settings``: :class:`ParserSettings`, every setting of a training run.
* ``training``: :func:`train_parser` (:class:`ParserTrainResult`), with checkpoints that resume
  exactly.
* ``files``: reading a parser file (:class:`ParserFile`, :func:`read_parser`,
  :func:`load_parser`), :data:`PARSER_FILES`, and whether a run may be resumed.

The command line: ``python -m treelstm parser train|eval`` and ``python -m treelstm parse``.

Example::

    from treelstm.parse import load_parser
    parser, vocab = load_parser("runs/parser/parser.pt")
    tree = parser.parse([["It", "'s", "a", "lovely", "film"]])[0]   # a SentimentTree
"""
from .cky import CKYResult, Span as Span, cky
from .files import PARSER_FILES, ParserFile, load_parser, read_parser
from .model import SpanParser
from .scores import balanced, bracket_f1, evaluate_parser, right_branching, tree_spans
from .settings import ParserSettings
from .training import ParserTrainResult, train_parser

__all__ = ["SpanParser", "CKYResult", "cky", "tree_spans", "bracket_f1", "right_branching",
           "balanced", "evaluate_parser", "ParserSettings", "ParserTrainResult", "train_parser",
           "ParserFile", "read_parser", "load_parser", "PARSER_FILES"]
