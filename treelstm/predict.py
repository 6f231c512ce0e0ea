"""Batched inference with a saved sentiment classifier, streaming, in input order.

Python::

    from treelstm import Predictor

    predictor = Predictor.from_checkpoint("runs/tree/best.pt", device="cpu")
    lines = ["(3 (2 a) (4 good))", "A dull, lifeless film."]  # the sentence needs the LSTM or
    for result in predictor.predict(lines, batch_size=256):   # a parser (parser=...)
        print(result.label, result.probs)

Command line: ``python -m treelstm predict CHECKPOINT [FILE]`` (``--help``), built on
:func:`predict_records`.

How a stream of any length is handled in bounded memory: :func:`iter_windows` takes at most
``window`` items at a time from the input; within a window :func:`plan_batches` sorts the trees by
size and cuts them into batches of at most ``batch_trees`` trees and ``max_nodes`` nodes (similar
sizes together: less padding for the LSTM, fewer idle levels for the Tree-LSTM); the results are
put back in input order before the next window is read.

Input trees come as :class:`~treelstm.data.SentimentTree` (their labels are ignored), as
``nltk.Tree`` s, or as lines (:mod:`treelstm.inputs`): bracketed trees (SST's or a parser's), JSON
objects ``{"parent": [...], "tokens": [...]}`` whose leaves are nodes ``0..n-1`` in sentence
order, or plain text (a Tree-LSTM then needs a ``parser``).
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
from typing import (TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Optional,
                    Sequence, TypeVar, Union, cast)

import torch
from torch import nn

from .checks import is_int
from .data import SentimentTree, Vocab
from .inputs import (FORMATS, TextParser, decode_line, is_nltk_tree, line_kind,
                     load_text_parser, parse_tree_line, tree_from_json, trees_from_texts)
from .training.checkpoint import load_model
from .training.config import resolve_device

if TYPE_CHECKING:
    from .classifier import Classifier

__all__ = ["FORMATS", "DTYPES", "TreePrediction", "LineError", "Predictor", "iter_windows",
           "plan_batches", "parse_tree_line", "tree_from_json", "predict_records"]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

#: ``dtype`` names for :func:`torch.autocast`.
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TreePrediction(NamedTuple):
    """The prediction for one tree.

    Attributes:
        label: the root's class (argmax).
        probs: ``[C]`` the root's class probabilities (softmax, float32).
        node_labels: ``[N]`` every node's class, in the tree's node order (leaves ``0..n-1``,
            then internal nodes), when asked for; ``None`` otherwise.
    """

    label: int
    probs: list[float]
    node_labels: Optional[list[int]] = None


class LineError(ValueError):
    """A malformed input line: ``lineno`` (1-based) and the reason (``str(error)``)."""

    def __init__(self, lineno: int, reason: str):
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason


# ---------------------------------------------------------------------------- windows
def iter_windows(items: Iterable[T], window: int, max_size: Optional[int] = None,
                 size: Optional[Callable[[T], int]] = None,
                 first_window: Optional[int] = None) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``window`` items (and, with ``max_size``, of
    at most ``max_size`` total ``size(item)``, but at least one item); an item is taken from
    ``items`` only when the previous window has been handed out, so at most one window is held
    at once. With ``first_window``, the first list holds at most that many items and each next
    one at most twice as many as the last, up to ``window``: the first results come out early
    (the time to the first prediction), later windows are full size."""
    if not is_int(window) or window < 1:
        raise ValueError(f"iter_windows: window must be a positive integer; got {window!r}")
    if first_window is not None and (not is_int(first_window) or first_window < 1):
        raise ValueError(f"iter_windows: first_window must be a positive integer; got "
                         f"{first_window!r}")
    limit = window if first_window is None else min(first_window, window)
    chunk: list[T] = []
    total = 0
    for item in items:
        chunk.append(item)
        total += size(item) if max_size is not None and size is not None else 0
        if len(chunk) == limit or (max_size is not None and total >= max_size):
            yield chunk
            chunk, total, limit = [], 0, min(2 * limit, window)
    if chunk:
        yield chunk


#: The longest input line, in bytes, that :func:`predict_records` reads (a longer line is that
#: line's error), so that memory stays bounded whatever the input.
MAX_LINE_BYTES = 64 * 2 ** 20
#: The most bytes of input lines :func:`predict_records` holds at once.
WINDOW_BYTES = 256 * 2 ** 20


def bounded_lines(stream, limit: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a binary ``stream``, each read with at most ``limit + 1`` bytes held: a
    longer line comes back cut to ``limit + 1`` bytes without its newline (the rest of it is
    skipped), which :func:`predict_records` reports as too long."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the line, a piece at a time
                rest = stream.readline(2 ** 20)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def plan_batches(sizes: Sequence[int], batch_trees: int,
                 max_nodes: Optional[int] = None) -> list[list[int]]:
    """Group item indices into batches of similar size.

    The indices are sorted by ``sizes`` (stable: ties keep input order) and cut greedily: a
    batch ends before it would exceed ``batch_trees`` items or ``max_nodes`` total size. An item
    larger than ``max_nodes`` gets a batch of its own. Every index appears exactly once.
    """
    if not is_int(batch_trees) or batch_trees < 1:
        raise ValueError(f"plan_batches: batch_trees must be a positive integer; got "
                         f"{batch_trees!r}")
    if max_nodes is not None and (not is_int(max_nodes)
                                  or max_nodes < 1):
        raise ValueError(f"plan_batches: max_nodes must be a positive integer or None; got "
                         f"{max_nodes!r}")
    order = sorted(range(len(sizes)), key=sizes.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index in order:
        size = sizes[index]
        if current and (len(current) == batch_trees
                        or (max_nodes is not None and total + size > max_nodes)):
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += size
    if current:
        batches.append(current)
    return batches


# -------------------------------------------------------------------------- predictor
#: What a classifier offers (see :class:`~treelstm.models.ClassifierOutput`).
_CONTRACT = ("collate", "cost", "check_tree", "labels_nodes", "num_classes")


def _frozen(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` for inference only: on ``device``, eval mode, no gradients, and (Tree-LSTM)
    each vocabulary word's projection kept between batches."""
    model = model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    tree_lstm = getattr(model, "tree_lstm", None)
    if tree_lstm is not None:
        tree_lstm.projection_cache.clear()  # a copy's cache was the caller's
        tree_lstm.cache_projections()
    return model


def _resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"Predictor: dtype must be None, {', '.join(map(repr, DTYPES))}, "
                     f"torch.bfloat16 or torch.float16; got {dtype!r}")


class Predictor:
    """A frozen copy of a classifier with its vocabulary, for predictions in batches.

    The Predictor works on its own copy of ``model`` (in eval mode, on ``device``, parameters
    not requiring gradients), taken when it is built: the caller's module is never changed
    (mode, device, flags, parameters), and training it further does not change this
    Predictor's answers -- build a new Predictor to predict with the new weights. Its copy
    keeps each vocabulary word's projection between batches (see
    :meth:`~treelstm.TreeLSTM.cache_projections`); nothing outside the Predictor holds the
    copy's weights, so what is kept can never go stale.

    Args:
        model: a :class:`~treelstm.TreeLSTMClassifier` or :class:`~treelstm.LSTMClassifier`;
            copied (``copy.deepcopy``), unless ``copy_model=False``: then it is taken over
            (frozen, moved, cached) and must not be changed afterwards.
        vocab: the vocabulary of its embedding.
        device: where to run. Default: ``"cpu"``
        dtype: ``None`` (the model's own, float32), ``"bf16"`` or ``"fp16"``: run under
            ``torch.autocast`` in that dtype. Default: ``None``
        parser: what turns plain text into a tree for a Tree-LSTM: a callable that gets the
            sentence and returns an ``nltk.Tree`` or a ``SentimentTree`` (see
            :mod:`treelstm.inputs`). Default: ``None`` (plain text is refused for a Tree-LSTM)
    """

    def __init__(self, model: nn.Module, vocab: Vocab, device: Union[str, torch.device] = "cpu",
                 dtype: Union[None, str, torch.dtype] = None, *, copy_model: bool = True,
                 parser: Optional[TextParser] = None) -> None:
        missing = [name for name in _CONTRACT if not hasattr(model, name)]
        if not isinstance(model, nn.Module) or missing:
            raise TypeError(f"Predictor: model must be a classifier (TreeLSTMClassifier, "
                            f"LSTMClassifier, or a module with {', '.join(_CONTRACT)}); got "
                            f"{type(model).__name__}")
        if not isinstance(vocab, Vocab):
            raise TypeError(f"Predictor: vocab must be a Vocab; got {type(vocab).__name__}")
        self.device = resolve_device(str(device))
        self.dtype = _resolve_dtype(dtype)
        expected = getattr(model, "vocab_size", None)
        if expected is not None and len(vocab) != expected:
            raise ValueError(f"Predictor: the vocabulary has {len(vocab)} words, the model's "
                             f"embedding {expected} rows: they do not belong together")
        self.model = _frozen(copy.deepcopy(model) if copy_model else model, self.device)
        self.vocab = vocab
        #: Whether the model labels every node (a Tree-LSTM) or sentences only (the LSTM).
        self.labels_nodes = bool(self.model.labels_nodes)
        #: Whether the model reads trees (a Tree-LSTM) or the words only (the LSTM).
        self.reads_trees = bool(getattr(self.model, "reads_trees", True))
        #: The most children a node may have (an N-ary Tree-LSTM's arity), or None.
        self.max_children: Optional[int] = getattr(self.model, "max_children", None)
        if parser is not None and not callable(parser):
            raise TypeError(f"Predictor: parser must be a callable text -> nltk.Tree (or "
                            f"SentimentTree); got {type(parser).__name__}")
        #: What turns plain text into trees for a Tree-LSTM (see :mod:`treelstm.inputs`).
        self.parser = parser

    @classmethod
    def from_checkpoint(cls, path: PathLike, device: Union[str, torch.device] = "cpu",
                        dtype: Union[None, str, torch.dtype] = None,
                        parser: Union[None, PathLike, TextParser] = None) -> "Predictor":
        """Load a checkpoint written by :func:`treelstm.training.save_checkpoint`; ``parser``: a
        parser checkpoint (``python -m treelstm parser train``) or a callable (see
        :mod:`treelstm.inputs`), for plain text with a Tree-LSTM.

        Raises:
            FileNotFoundError: no such file.
            ValueError: naming the file: not a readable checkpoint, or weights that do not fit.
        """
        model, vocab, _ = load_model(path, map_location="cpu")
        if parser is not None and not callable(parser):
            parser = load_text_parser(parser, device=resolve_device(str(device)))
        return cls(model, vocab, device=device, dtype=dtype, copy_model=False, parser=parser)

    def to_trees(self, items: Sequence[Any], format: str = "auto"
                 ) -> list[Union[SentimentTree, ValueError, TypeError]]:
        """Each item as a tree this model can take, or the ValueError (TypeError: an item of
        another type) saying why not: a
        :class:`~treelstm.data.SentimentTree` (checked), an ``nltk.Tree``, or a line (``str``
        or ``bytes``: a bracketed tree, a JSON object or plain text; see
        :mod:`treelstm.inputs`). :meth:`read_items`, then :meth:`checked`."""
        return [self.checked(tree) for tree in self.read_items(items, format)]

    def read_items(self, items: Sequence[Any], format: str = "auto"
                   ) -> list[Union[SentimentTree, ValueError, TypeError]]:
        """:meth:`to_trees` without the model's check (what ``predict --workers`` does in its
        worker processes): each item as a tree (binarised for an N-ary model), or its error."""
        results: list[Union[SentimentTree, ValueError, TypeError, None]] = [None] * len(items)
        texts: list[tuple[int, str]] = []
        for k, item in enumerate(items):
            try:
                if isinstance(item, (str, bytes)):
                    text = decode_line(item)
                    if not text:
                        raise ValueError("empty line; expected a tree or a sentence")
                    if line_kind(text, format) == "text":
                        texts.append((k, text))
                        continue
                    item = parse_tree_line(text, format, binarize=self.max_children)
                elif is_nltk_tree(item):
                    item = SentimentTree.from_nltk(item, binarize=self.max_children)
                elif isinstance(item, SentimentTree):
                    item.validate("tree")
                else:
                    raise TypeError(f"a {type(item).__name__}; expected a SentimentTree, an "
                                    "nltk.Tree or a line of text")
                results[k] = item
            except (TypeError, ValueError) as error:
                results[k] = error
        parsed = trees_from_texts([text for _, text in texts], self.parser, self.reads_trees,
                                  self.max_children)
        for (k, _), tree in zip(texts, parsed):
            results[k] = tree
        return cast("list[Union[SentimentTree, ValueError, TypeError]]", results)  # all set

    def checked(self, tree: Union[SentimentTree, ValueError, TypeError]
                ) -> Union[SentimentTree, ValueError, TypeError]:
        """``tree`` if this model can take it (:meth:`check_tree`), else the ValueError; an
        error as it is."""
        if isinstance(tree, SentimentTree):
            try:
                self.check_tree(tree)
            except ValueError as error:
                return error
        return tree

    @property
    def num_classes(self) -> int:
        """``C``, the number of sentiment classes the model predicts."""
        return cast("Classifier", self.model).num_classes

    def size_of(self, tree: SentimentTree) -> int:
        """The cost measure of batching (the model's ``cost``: nodes or tokens)."""
        return cast("Classifier", self.model).cost(tree)

    def check_tree(self, tree: SentimentTree) -> None:
        """ValueError if the model cannot take ``tree`` (the model's ``check_tree``: an N-ary
        Tree-LSTM and a node with more children than its arity), checked per tree so that one
        bad tree does not fail a whole batch."""
        cast("Classifier", self.model).check_tree(tree)

    @torch.inference_mode()
    def predict_batch(self, trees: Sequence[SentimentTree],
                      node_labels: bool = False) -> list[TreePrediction]:
        """One forward pass over ``trees``; results in the same order."""
        if node_labels and not self.labels_nodes:
            raise ValueError("Predictor: node labels need a TreeLSTMClassifier; an "
                             "LSTMClassifier labels sentences only")
        trees = list(trees)
        if not trees:
            return []
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            node_logits, root_logits = self.model(
                cast("Classifier", self.model).collate(trees, self.vocab).to(self.device),
                nodes=node_labels)
        probs = root_logits.float().softmax(dim=1).cpu()
        labels = probs.argmax(dim=1).tolist()
        per_node: list[Optional[list[int]]] = [None] * len(trees)
        if node_labels:
            flat = node_logits.argmax(dim=1).cpu().tolist()
            start = 0
            for t, tree in enumerate(trees):
                per_node[t] = flat[start:start + tree.num_nodes]
                start += tree.num_nodes
        return [TreePrediction(label, row, nodes)
                for label, row, nodes in zip(labels, probs.tolist(), per_node)]

    def predict(self, trees: Iterable[Any], batch_size: int = 256,
                max_nodes: Optional[int] = None, node_labels: bool = False,
                window: Optional[int] = None, format: str = "auto") -> Iterator[TreePrediction]:
        """Predictions for ``trees``, yielded one per item in input order.

        Items are :class:`~treelstm.data.SentimentTree` objects, ``nltk.Tree`` s or lines
        (``str``: a bracketed tree, a JSON object or a sentence of plain text -- which needs the
        Predictor's ``parser`` for a Tree-LSTM; see :mod:`treelstm.inputs`). ``trees`` may be
        any iterable (a generator over a huge file): it is read ``window`` items at a time
        (default: ``16 * batch_size``), sorted by size within the window, run in batches of at
        most ``batch_size`` trees and ``max_nodes`` nodes, and the window's results are yielded
        in input order before the next window is read. ``format`` reads the strings
        (:data:`~treelstm.inputs.FORMATS`; ``"text"``: every string is a sentence, also one that
        starts with a bracket).

        Returns an iterator: the items are read, and their errors raised, as it is consumed.

        Raises:
            ValueError: an item that is no tree this model can take (see :meth:`check_tree`),
                naming its index.
            TypeError: an item of another type; one item (a ``str``, a tree) instead of an
                iterable of them (at once, not when iterated).
        """
        if isinstance(trees, (str, bytes, SentimentTree)) or is_nltk_tree(trees):
            raise TypeError(f"Predictor.predict: expected an iterable of items (trees or lines); "
                            f"got one {type(trees).__name__}: pass [item]")
        return self._predictions(trees, batch_size, max_nodes, node_labels, window, format)

    def _predictions(self, trees: Iterable[Any], batch_size: int, max_nodes: Optional[int],
                     node_labels: bool, window: Optional[int], format: str
                     ) -> Iterator[TreePrediction]:
        window = window if window is not None else 16 * batch_size
        offset = 0
        for chunk in iter_windows(trees, window):
            chunk_trees = self.to_trees(chunk, format)
            for k, tree in enumerate(chunk_trees):
                if isinstance(tree, TypeError):
                    raise TypeError(f"Predictor.predict: item {offset + k} is {tree}") from None
                if isinstance(tree, ValueError):
                    raise ValueError(f"Predictor.predict: item {offset + k}: {tree}") from None
            # every item is a tree now: the errors were raised above
            valid = cast("list[SentimentTree]", chunk_trees)
            results: list[Optional[TreePrediction]] = [None] * len(chunk)
            for batch in plan_batches([self.size_of(t) for t in valid], batch_size, max_nodes):
                for index, result in zip(batch, self.predict_batch([valid[i] for i in batch],
                                                                   node_labels)):
                    results[index] = result
            offset += len(chunk)
            yield from cast("list[TreePrediction]", results)  # each index is in one batch


# ------------------------------------------------------------------------------ lines
def _strip_bom(line: Union[str, bytes]) -> Union[str, bytes]:
    """A byte-order mark at the start of the input is not part of the first tree."""
    if isinstance(line, bytes):
        return line[3:] if line.startswith(b"\xef\xbb\xbf") else line
    return line[1:] if line.startswith("\ufeff") else line


def predict_records(predictor: Predictor, lines: Iterable[Union[str, bytes]],
                    format: str = "auto", batch_trees: int = 256,
                    max_nodes: Optional[int] = None, window: int = 4096,
                    node_labels: bool = False, skip_bad: bool = False,
                    digits: Optional[int] = 6, workers: int = 0) -> Iterator[dict]:
    """JSON-ready records for the trees of ``lines`` (one tree per line), in input order.

    A record is ``{"line": N, "label": ..., "probs": [...]}`` (plus ``"node_labels"`` when
    asked), ``N`` counting lines from 1. Blank lines are skipped (no record). A line that is not
    a tree (or one the model cannot take) raises :class:`LineError` after the records of the
    lines before it have been yielded; with ``skip_bad`` it becomes ``{"line": N, "error":
    "..."}`` and the stream goes on.

    Memory: at most ``window`` lines and :data:`~treelstm.predict.WINDOW_BYTES` of them are held
    at a time (see :func:`~treelstm.predict.iter_windows`; the first window is ``batch_trees``
    lines, each next one twice the last, up to ``window``, so that the first records come out
    soon); give a binary file through :func:`~treelstm.predict.bounded_lines` so that no single
    line is read past :data:`~treelstm.predict.MAX_LINE_BYTES`.

    Args:
        digits: round probabilities to this many decimals (``None``: full float32 values).
        workers: read the lines into trees in this many worker processes, one window ahead of
            the model (:mod:`treelstm.read_workers`); ``0``: here, in turn with the model.
    """
    from .cpus import check_worker_count
    from .read_workers import read_ahead

    if format not in FORMATS:
        raise ValueError(f"predict_records: format must be one of {FORMATS}; got {format!r}")
    check_worker_count("predict_records", "workers", workers)
    numbered = enumerate(lines, start=1)
    # the first window is one batch, so that the first records come out soon; then it doubles
    windows = (_window_lines(chunk) for chunk in iter_windows(
        numbered, window, WINDOW_BYTES, lambda item: len(item[1]), first_window=batch_trees))
    # closed when this generator ends however it ends (a bad line, a caller that stops): the
    # workers stop then, not whenever the garbage collector gets to them
    read = read_ahead(predictor, windows, lambda lines: [raw for _, raw in lines[0]], format,
                      workers)
    with contextlib.closing(read):
        for (numbered_lines, too_long), trees_read in read:
            entries, failure = _window_entries(numbered_lines, too_long, trees_read, skip_bad)
            trees = [(k, tree) for k, (_, tree) in enumerate(entries)
                     if isinstance(tree, SentimentTree)]
            results: list[Optional[TreePrediction]] = [None] * len(entries)
            sizes = [predictor.size_of(tree) for _, tree in trees]
            for batch in plan_batches(sizes, batch_trees, max_nodes):
                predictions = predictor.predict_batch([trees[i][1] for i in batch], node_labels)
                for i, prediction in zip(batch, predictions):
                    results[trees[i][0]] = prediction
            for (lineno, tree), result in zip(entries, results):
                error = None if isinstance(tree, SentimentTree) else str(tree)
                if result is not None and not all(map(math.isfinite, result.probs)):
                    error = ("the model gave non-finite probabilities for this tree (overflow in "
                             "the --dtype?)")
                    if not skip_bad:
                        failure = LineError(lineno, error)
                        break
                    result = None
                if result is None:
                    yield {"line": lineno, "error": error}
                    continue
                record = {"line": lineno, "label": result.label,
                          "probs": [round(p, digits) for p in result.probs] if digits is not None
                          else result.probs}
                if node_labels:
                    record["node_labels"] = result.node_labels
                yield record
            if failure is not None:
                raise failure


def _window_lines(chunk: list[tuple[int, Union[str, bytes]]]
                  ) -> tuple[list[tuple[int, Union[str, bytes]]], dict[int, ValueError]]:
    """The window's non-blank lines as ``(lineno, line)``, and the errors of those too long to
    read (by their index; their line is then empty)."""
    numbered: list[tuple[int, Union[str, bytes]]] = []
    too_long: dict[int, ValueError] = {}
    for lineno, raw in chunk:
        if lineno == 1:
            raw = _strip_bom(raw)
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            too_long[len(numbered)] = ValueError(f"line longer than {MAX_LINE_BYTES} bytes (the "
                                                 "most a line may hold)")
            raw = b""
        numbered.append((lineno, raw))
    return numbered, too_long


def _window_entries(numbered: list[tuple[int, Union[str, bytes]]],
                    too_long: dict[int, ValueError],
                    trees: Sequence[Union[SentimentTree, ValueError, TypeError]], skip_bad: bool
                    ) -> tuple[list[tuple[int, Union[SentimentTree, ValueError, TypeError]]],
                               Optional[LineError]]:
    """``(lineno, tree or the ValueError)`` per line of :func:`_window_lines`, from its
    ``trees``; without ``skip_bad``, only those before the first bad line, and that line's
    :class:`LineError`."""
    entries = [(lineno, too_long.get(k, tree)) for k, ((lineno, _), tree)
               in enumerate(zip(numbered, trees))]
    if not skip_bad:
        for k, (lineno, tree) in enumerate(entries):
            if not isinstance(tree, SentimentTree):
                return entries[:k], LineError(lineno, str(tree))
    return entries, None
