"""What ``predict`` reads: one input line -> a :class:`~treelstm.data.SentimentTree`, or plain
text for a parser.

A line is, by its first character (``format="auto"``) or by ``format``:

* ``(``: a bracketed tree. SST's own lines (integer labels 0..4, binary) go through the fast
  reader :func:`~treelstm.data.parse_ptb_line`; any other bracketed tree -- a parser's labels
  (``ROOT``, ``S``, ``NP``: ignored), unary chains, nodes with more children than an N-ary model
  takes -- through :func:`~treelstm.data.parse_bracketed` (nltk), unary chains collapsed and,
  for a model of arity ``k``, wider nodes binarised (right-factored, as nltk's
  ``chomsky_normal_form``; see :mod:`treelstm.data.nltk_trees`). In ``"auto"``, a line that
  reads as a bracketed tree but has words side by side in one bracket, as
  ``(Not bad at all)``, is refused: SST and parsers put every word in a bracket of its own,
  so it is more likely a sentence that starts with a bracket (``format="text"``).
* ``{``: a JSON object ``{"parent": [...], "tokens": [...]}`` (:func:`tree_from_json`).
* anything else: plain text, tokenized as SST is (:func:`~treelstm.data.tokenize`). A sentence
  model (the LSTM baseline) needs its words only; a Tree-LSTM needs a parser: a callable from
  text to an ``nltk.Tree`` (or a ``SentimentTree``), e.g. a Stanza or benepar pipeline you have,
  or the parser this project trains (``python -m treelstm parser train``, loaded with
  :func:`load_text_parser`). Nothing is downloaded.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Optional, Sequence, Union

from .checks import is_int, shorten
from .data import IGNORE_INDEX, SentimentTree, parse_ptb_line, tokenize
from .data.parents import bottom_up_order, children_lists

__all__ = ["FORMATS", "TextParser", "parse_tree_line", "tree_from_json", "line_kind", "is_nltk_tree",
           "sentence_tree", "trees_from_texts", "load_text_parser"]

#: The input line formats ``"ptb"`` (bracketed trees), ``"jsonl"`` (JSON objects) and ``"text"``
#: (plain text), and ``"auto"``, decided per line by its first character.
FORMATS = ("auto", "ptb", "jsonl", "text")

#: What turns a sentence into a tree, ``parser(text)`` -> ``nltk.Tree`` or ``SentimentTree``;
#: one with a ``parse_many(texts)`` method is given a batch at a time.
TextParser = Callable[[str], Any]


def tree_from_json(value: Any) -> SentimentTree:
    """A tree from ``{"parent": [...], "tokens": [...]}`` (other keys are ignored).

    ``parent[v]`` is node ``v``'s parent (``-1`` at the root); token ``i`` is node ``i``. As in
    :func:`~treelstm.data.read_ptb`'s trees, the leaves must be nodes ``0..n-1`` (``n`` tokens)
    in sentence order -- every internal node covers a contiguous run of them -- and nodes
    ``n..N-1`` internal. Labels are unknown: they are set to ``IGNORE_INDEX``.

    Raises:
        ValueError: a missing or mistyped field, or parents that do not make such a tree.
    """
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object {{\"parent\": [...], \"tokens\": [...]}}; got "
                         f"a JSON {type(value).__name__}")
    for key in ("parent", "tokens"):
        if key not in value:
            raise ValueError(f"missing key {key!r}; expected {{\"parent\": [...], \"tokens\": "
                             "[...]}")
        if not isinstance(value[key], list):
            raise ValueError(f"{key!r} must be a list; got {type(value[key]).__name__}")
    parent, tokens = value["parent"], value["tokens"]
    bad = next((p for p in parent if not is_int(p)), None)
    if bad is not None:
        raise ValueError(f"'parent' must hold integers; got {bad!r}")
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(f"'tokens' must hold non-empty strings; got {token!r}")
    tree = SentimentTree(tokens=list(tokens), parent=list(parent),
                         labels=[IGNORE_INDEX] * len(parent))
    tree.validate("tree")
    _check_leaf_order(tree)
    return tree


def _check_leaf_order(tree: SentimentTree) -> None:
    """ValueError unless every internal node spans a contiguous run of leaves (so that leaves
    0..n-1 read left to right are the sentence)."""
    num_tokens = len(tree.tokens)
    first = list(range(tree.num_nodes))
    last = list(range(tree.num_nodes))
    count = [1 if v < num_tokens else 0 for v in range(tree.num_nodes)]
    children = children_lists(tree.parent)
    for node in bottom_up_order(tree.parent, children):
        if node >= num_tokens:
            first[node] = min(first[c] for c in children[node])
            last[node] = max(last[c] for c in children[node])
            count[node] = sum(count[c] for c in children[node])
            if last[node] - first[node] + 1 != count[node]:
                raise ValueError(f"tree: node {node} covers {count[node]} of the leaves "
                                 f"{first[node]}..{last[node]}, not a contiguous run; leaves "
                                 f"0..{num_tokens - 1} must be in sentence order (no crossing "
                                 "branches)")


def is_nltk_tree(value: Any) -> bool:
    """Whether ``value`` is an ``nltk.Tree`` (a list with a ``label()``), told without importing
    nltk."""
    return isinstance(value, list) and callable(getattr(value, "label", None))


def line_kind(text: str, format: str = "auto") -> str:
    """``"ptb"``, ``"jsonl"`` or ``"text"``: what a (stripped, non-empty) line is, by ``format``
    or, with ``"auto"``, by its first character (``(``, ``{``, anything else)."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}")
    if format != "auto":
        return format
    return {"(": "ptb", "{": "jsonl"}.get(text[:1], "text")


def decode_line(line: Union[str, bytes]) -> str:
    """``line`` as text without surrounding whitespace (ValueError: not UTF-8)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
    return line.removeprefix("\ufeff").strip()  # a byte-order mark is no part of the line


#: How a tree with more than one word starts: ``(label (``.
_TREE_START = re.compile(r"\(\S+\s+\(")
#: How an SST tree starts: its root's label an integer.
_INTEGER_LABEL = re.compile(r"\([+-]?[0-9]+\s")


def parse_tree_line(line: Union[str, bytes], format: str = "auto",
                    binarize: Optional[int] = None) -> SentimentTree:
    """One input line -> a tree (labels of SST lines kept, other trees' labels
    ``IGNORE_INDEX``).

    Args:
        line: a bracketed tree or a JSON object (str, or UTF-8 bytes).
        format: ``"ptb"`` (any bracketed tree), ``"jsonl"`` or ``"auto"`` (JSON if the line
            starts with ``{``, a bracketed tree if with ``(``).
        binarize: the most children a node may have (an N-ary model's arity); a bracketed
            tree with wider nodes is binarised (module docstring). ``None``: as written.

    Raises:
        ValueError: the line is not a tree in that format (the message says why).
    """
    if format not in FORMATS or format == "text":
        raise ValueError(f"parse_tree_line: format must be one of {FORMATS[:3]}; got {format!r}")
    text = decode_line(line)
    if not text:
        raise ValueError("empty line; expected a tree")
    kind = line_kind(text, format)
    if kind == "text":
        raise ValueError(f"neither a bracketed tree '(...)' nor a JSON object '{{...}}': "
                         f"{shorten(text)!r} (plain text: --format text)")
    if kind == "ptb":
        if not text.startswith("("):  # format="ptb" was chosen
            hint = "a JSON tree: --format jsonl" if text.startswith("{") else \
                "plain text: --format text, or format='text'"
            raise ValueError(f"expected a bracketed tree '(...)'; got {shorten(text)!r} "
                             f"({hint})")
        try:
            tree = _bracketed(text, binarize)
        except ValueError as error:
            if format != "auto" or _TREE_START.match(text):
                raise  # a tree (it starts as one), broken inside or followed by more
            raise ValueError(f"{error} (a sentence that starts with a bracket: --format text, "
                             "or format='text')") from None
        if format == "auto" and not _INTEGER_LABEL.match(text):  # not SST's: a parser's?
            pair = _words_side_by_side(text)
            if pair is not None:
                raise ValueError(f"words side by side in one bracket ({shorten(' '.join(pair))!r}"
                                 "), which neither SST nor a parser writes: a sentence that "
                                 "starts with a bracket? --format text (or format='text') reads "
                                 "it as text, --format ptb as a tree")
        return tree
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at column {error.colno}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply; expected an object {\"parent\": [...], "
                         "\"tokens\": [...]}") from None
    return tree_from_json(value)


def _words_side_by_side(text: str) -> Optional[tuple[str, str]]:
    """The first two words of ``text`` that follow one another in one bracket, e.g. ``bad at``
    in ``(Not bad at all)``; ``None`` when every word is alone in its bracket (after its label),
    as SST and parsers write trees."""
    after_open = previous_word = False
    previous = ""
    for token in _BRACKET_TOKEN.findall(text):
        if token in "()":
            after_open, previous_word = token == "(", False
        elif after_open:  # a label
            after_open = False
        elif previous_word:
            return previous, token
        else:
            previous_word, previous = True, token
    return None


_BRACKET_TOKEN = re.compile(r"[()]|[^\s()]+")


def _bracketed(text: str, binarize: Optional[int]) -> SentimentTree:
    """SST's fast reader; any other bracketed tree (or one too wide for ``binarize``) through
    nltk. When both fail, the fast reader's message (it names SST's format)."""
    try:
        tree = parse_ptb_line(text)
        if binarize is None or tree.widest_node()[1] <= binarize:
            return tree
        problem: Optional[ValueError] = None
    except ValueError as error:
        problem = error
    from .data.nltk_trees import parse_bracketed

    try:
        return parse_bracketed(text, binarize=binarize)
    except ImportError:
        if problem is None:
            raise ValueError(f"a node has more than {binarize} children: binarising needs nltk "
                             "(pip install 'treelstm[data]')") from None
        raise ValueError(f"{problem} (trees with other labels need nltk: pip install "
                         "'treelstm[data]')") from None
    except ValueError as error:
        # The fast reader's message names SST's format; but a tree with other labels than
        # SST's (its root's label is not an integer: a parser's) failed for nltk's reason.
        if problem is None or not _INTEGER_LABEL.match(text):
            raise ValueError(str(error).removeprefix("parse_bracketed: ")) from None
        raise problem from None


def sentence_tree(tokens: Sequence[str]) -> SentimentTree:
    """A tree for a model that reads the words only (the LSTM baseline): every token a child of
    one root (a single token is the root). Labels ``IGNORE_INDEX``."""
    num_tokens = len(tokens)
    if num_tokens == 1:
        return SentimentTree(list(tokens), [-1], [IGNORE_INDEX])
    return SentimentTree(list(tokens), [num_tokens] * num_tokens + [-1],
                         [IGNORE_INDEX] * (num_tokens + 1))


def trees_from_texts(texts: Sequence[str], parser: Optional[TextParser], reads_trees: bool,
                     binarize: Optional[int] = None) -> list[Union[SentimentTree, ValueError]]:
    """A tree for each sentence, or the ValueError that says why there is none (so that one bad
    sentence does not fail the others): its words alone when the model does not read trees
    (``reads_trees=False``), else the ``parser``'s tree (an ``nltk.Tree`` is converted with
    ``binarize``; see the module docstring), checked to be a valid tree. Its leaves are the
    words the model reads, as the parser wrote them: they are not compared with the sentence
    (a parser may tokenize in its own way)."""
    if not reads_trees:
        return [sentence_tree(tokens) if tokens else ValueError("no words in this line")
                for tokens in map(tokenize, texts)]
    if parser is None:
        problem = ValueError("plain text needs a parser for a Tree-LSTM checkpoint: predict "
                             "--parser PARSER.pt or Predictor(..., parser=...) (make one with "
                             "'python -m treelstm parser train', or give any callable text -> "
                             "nltk.Tree), or bracketed trees as input; an LSTM checkpoint reads "
                             "plain text as it is")
        return [problem] * len(texts)
    many = getattr(parser, "parse_many", None)
    try:
        parsed = list(many(list(texts))) if many is not None else None
    except ValueError:
        parsed = None  # one by one: say which sentence
    if parsed is not None and len(parsed) != len(texts):
        problem = ValueError(f"the parser's parse_many gave {len(parsed)} trees for "
                             f"{len(texts)} sentences")
        return [problem] * len(texts)
    results: list[Union[SentimentTree, ValueError]] = []
    for k, text in enumerate(texts):
        try:
            result = parsed[k] if parsed is not None else parser(text)
            results.append(_checked_parse(result, binarize))
        except ValueError as error:
            results.append(ValueError(f"the parser: {error}"))
    return results


def _checked_parse(result: Any, binarize: Optional[int]) -> SentimentTree:
    if isinstance(result, SentimentTree):
        result.validate("tree")
        if binarize is not None and result.widest_node()[1] > binarize:
            raise ValueError(f"a node with {result.widest_node()[1]} children; this model takes "
                             f"at most {binarize}")
        return result
    if is_nltk_tree(result):
        return SentimentTree.from_nltk(result, binarize=binarize)
    raise ValueError(f"expected an nltk.Tree or a SentimentTree from the parser; got "
                     f"{type(result).__name__}")


def load_text_parser(path: Any, device: Any = "cpu") -> TextParser:
    """The parser saved by ``python -m treelstm parser train`` as a :data:`TextParser`: text is
    tokenized (:func:`~treelstm.data.tokenize`) and parsed in batches."""
    from .parse import load_parser

    model, _ = load_parser(path)
    model = model.to(device).eval()

    class _SpanTextParser:
        def __call__(self, text: str) -> SentimentTree:
            return self.parse_many([text])[0]

        def parse_many(self, texts: Sequence[str]) -> list[SentimentTree]:
            sentences = [tokenize(text) for text in texts]
            for sentence in sentences:
                if not sentence:
                    raise ValueError("no words in this line")
            return model.parse(sentences)

    return _SpanTextParser()
