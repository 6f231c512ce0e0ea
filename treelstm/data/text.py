r"""Raw sentence text <-> tokens as the Stanford Sentiment Treebank (SST) writes them.

:func:`~treelstm.data.tokenize` is the Penn Treebank word tokenizer (nltk's
``TreebankWordTokenizer``, a port of the Treebank ``tokenizer.sed``) plus SST's conventions. It uses
nltk when nltk is installed and otherwise a pure-Python copy of nltk 3.10's regular expressions that
gives the same tokens (``tests/test_text.py`` compares the two on every SST sentence and on
generated text; they could differ only where Python's ``re`` and the ``regex`` module nltk uses
disagree on a Unicode character class, e.g. digits of scripts newer than Python's Unicode tables).
It reads one sentence at a time: only the last period is split off.

:func:`~treelstm.data.detokenize` goes the other way, as nltk's ``TreebankWordDetokenizer`` does: a
plausible raw sentence. ``tokenize(detokenize(tokens)) == tokens`` for all but 3 of SST's 11,855
sentences (``benchmarks/tokenizer_roundtrip.py``).

SST's conventions, as its files (``train/dev/test.txt``) show them, with what ``tokenize`` makes of
raw text:

* brackets are PTB symbols: ``(`` ``)`` -> ``-LRB-`` ``-RRB-`` (and ``[ ] { }`` -> ``-LSB-``
  ``-RSB-`` ``-LCB-`` ``-RCB-``, which SST never has);
* double quotes are ````` and ``''`` (opening, closing; SST has no ``"``); a ``"`` opens after a
  space, a bracket, ``--`` or ``...``, and closes elsewhere;
* single quotes: a backquote (opening) is always its own token, a ``'`` before a space (closing)
  too; a straight ``'`` used as an opening quote stays on its word (SST writes a backquote);
* clitics are split as in the Treebank: ``it's`` -> ``it 's``, ``can't`` -> ``ca n't``,
  ``won't`` -> ``wo n't``, ``'re 'll 've 'd 'm``, ``cannot`` -> ``can not`` (SST: 25 times, no
  ``cannot``); but ``gonna``, ``gotta``, ``wanna`` stay whole (SST: 5 times, never split), and so do
  ``'n'`` and ``ol'`` (``rock 'n' roll``, ``good ol' boys``), ``'em``, ``'70s``;
* ``/`` and ``*`` are escaped, ``\/`` and ``\*``; a slash does not split a word
  (``writer\/director``), a run of asterisks is a token of its own (``M \* A \* S \* H``,
  ``\*\*\*``);
* ``--`` and ``...`` are tokens; a single hyphen does not split (``coming-of-age``);
* ``& ; @ # $ %`` are tokens, except ``&`` between two capitals (``S&M``, ``R&B``); a run of
  ``?`` and ``!`` is one token (``!?``, ``?!?``);
* periods: only the last one is split off, except from initials and acronyms (``Jason X.``,
  ``E.T.``, ``P.O.W.``; not ``I.``) and titles (``Mulholland Dr.``), which keep it; ``etc.``,
  ``Bros.`` and ``No.`` keep it and a ``.`` token follows (``etc. .``, also ``Um, no.`` ->
  ``no. .``); a period after another word's period is split off too (``puerile. .`` ->
  ``puerile . .``);
* a no-break space (U+00A0, U+2007, U+202F) between two characters does not split: SST has
  ``8\xa01\/2``; any other whitespace separates tokens.
"""
from __future__ import annotations

import functools
import itertools
import re
from typing import Callable, Iterable

__all__ = ["tokenize", "detokenize"]

# What the `regex` module (which nltk's patterns use) counts as \s: Unicode White_Space. Python's
# re also counts \x1c-\x1f, so the copies below spell the class out.
_SPACE_CHARS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_S = f"[{_SPACE_CHARS}]"
# Spaces that must not break a line (Unicode line-break class GL): they join their neighbours.
_NO_BREAK_SPACES = "\xa0\u2007\u202f"
_PRIVATE_USE = (range(0xE000, 0xF900), range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))

# --- a copy of nltk 3.10's TreebankWordTokenizer.tokenize(text, convert_parentheses=True) ----
_MACINTYRE_2 = [r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b",
                r"(?i)\b(gon)(?#X)(na)\b", r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b",
                r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)"]
_MACINTYRE_3 = [r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b"]
_TOKENIZER_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    # starting quotes
    (r"^\"", r"``"),
    (r"(``)", r" \1 "),
    (r"([ \(\[{<])(\"|\'{2})", r"\1 `` "),
    # punctuation
    (r"([:,])([^\d])", r" \1 \2"),
    (r"([:,])$", r" \1 "),
    (r"\.\.\.", r" ... "),
    (r"[;@#$%&]", r" \g<0> "),
    (rf'([^\.])(\.)([\]\)}}>"\']*){_S}*$', r"\1 \2\3 "),  # the final period
    (r"[?!]", r" \g<0> "),
    (r"([^'])' ", r"\1 ' "),
    # brackets, as PTB symbols
    (r"[\]\[\(\)\{\}\<\>]", r" \g<0> "),
    (r"\(", "-LRB-"), (r"\)", "-RRB-"), (r"\[", "-LSB-"), (r"\]", "-RSB-"), (r"\{", "-LCB-"),
    (r"\}", "-RCB-"),
    (r"--", r" -- "),
]]
_PADDED_TOKENIZER_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    # ending quotes (on the text padded with a space at each end)
    (r"''", " '' "),
    (r'"', " '' "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
]] + [(re.compile(pattern), r" \1 \2 ") for pattern in _MACINTYRE_2 + _MACINTYRE_3]

# --- a copy of nltk 3.10's TreebankWordDetokenizer.tokenize(tokens, convert_parentheses=True) --
_DETOKENIZER_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    *((pattern.replace("(?#X)", _S).replace(r"\s", _S), r"\1\2")
      for pattern in _MACINTYRE_3 + _MACINTYRE_2),
    # ending quotes
    (rf"([^' ]){_S}('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1\2 "),
    (rf"([^' ]){_S}('[sS]|'[mM]|'[dD]|') ", r"\1\2 "),
    (rf"([^'{_SPACE_CHARS}]){_S}(\'\')", r"\1\2"),
    (rf"([,.;:!?']){_S}+(\"|\'\')", r"\1\2"),
    (rf"(\'\'){_S}([.,:)\]>}};%])", r"\1\2"),
    (r"''", '"'),
    (r'([,.;:!?])"(\')', r"\1\2" '"'),
]]
_DETOKENIZER_UNPADDED_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    (r" -- ", r"--"),
    (r"-LRB-", "("), (r"-RRB-", ")"), (r"-LSB-", "["), (r"-RSB-", "]"), (r"-LCB-", "{"),
    (r"-RCB-", "}"),
    # brackets
    (rf"([\[\(\{{\<]){_S}", r"\g<1>"),
    (rf"{_S}([\]\)\}}\>])", r"\g<1>"),
    (rf"([\]\)\}}\>]){_S}([:;,.])", r"\1\2"),
    # punctuation
    (rf"([^']){_S}'{_S}", r"\1' "),
    (rf"{_S}([?!])", r"\g<1>"),
    (rf'([^\.]){_S}(\.)(?!\.)([\]\)}}>"\']*)', r"\1\2\3"),
    (rf"([#$]){_S}", r"\g<1>"),
    (rf"{_S}([;%])", r"\g<1>"),
    (rf"{_S}\.\.\.{_S}", r"..."),
    (rf"{_S}([:,])", r"\1"),
    # starting quotes
    (rf"([ (\[{{<]){_S}``", r"\1``"),
    (rf"(``){_S}", r"\1"),
    (r"``", r'"'),
]]

# --- SST's conventions on top of the Treebank tokenizer ------------------------------------------
_OWN_TOKEN = re.compile(r"`+|(?:\\?\*)+|[?!]{2,}")  # these stand alone in SST
# A double quote glued to a dash or an ellipsis before a word opens (nltk: only after a space).
_OPENING_QUOTE = re.compile(r'(?:(?<=--)|(?<=\.\.\.))"(?=\w)')
_UNESCAPED = re.compile(r"(?<!\\)[/*]")
_ESCAPED = re.compile(r"\\([/*])")
# Spans the Treebank tokenizer would split but SST keeps whole.
_KEEP_WHOLE = re.compile("|".join([
    rf"(?<=\S)[{_NO_BREAK_SPACES}]+(?=\S)",  # 8\xa01/2
    r"\b(?i:gonna|gotta|wanna)\b",
    r"\b[A-Z]&[A-Z]\b",  # S&M, R&B
    r"[?!]{2,}",  # !? ?!?
    r"(?<![^\s(\[{<\"`])(?i:'n'|ol')(?=\s|$)",  # rock 'n' roll, good ol' boys
]))
# The last word of a sentence, with the periods written apart after it and closing quotes or
# brackets: "... Jason X.", "... for. .", "... etc.)".
_LAST_WORD = re.compile(r"(?<![^\s(\[{<\"`])(?P<word>[^\s(\[{<\"`]+?)(?P<periods>(?:\s+\.)*)"
                        r"[\]\)}>\"']*\s*$")
_INITIALS = re.compile(r"(?:[A-Za-z]\.){2,}|(?!I\.)[A-Z]\.|(?:Dr|Mr|Mrs|Ms|Jr|Sr|St)\.")
_ABBREVIATIONS = re.compile(r"(?i:etc|bros|no)\.")


def tokenize(text: str) -> list[str]:
    """The tokens of a raw sentence, as SST writes them (see the module docstring).

    >>> tokenize("It's a lovely film (really) -- isn't it?")
    ['It', "'s", 'a', 'lovely', 'film', '-LRB-', 'really', '-RRB-', '--', 'is', "n't", 'it', '?']

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a str, got {type(text).__name__}")
    return _tokenize(text, _treebank_backend()[0])


def detokenize(tokens: Iterable[str]) -> str:
    """A raw sentence for SST tokens: nltk's ``TreebankWordDetokenizer`` after undoing SST's
    escapes (``\\/`` -> ``/``, ``\\*`` -> ``*``, ``-LRB-`` -> ``(``), with an opening backquote
    attached to the word after it.

    >>> detokenize(['It', "'s", '``', 'lovely', "''", '-LRB-', 'really', '-RRB-', '.'])
    'It\\'s "lovely" (really).'

    Raises:
        TypeError: ``tokens`` is a ``str`` (pass ``tokens.split()``) or holds a non-``str``.
    """
    if isinstance(tokens, str):
        raise TypeError("detokenize: expected a sequence of str tokens, got a str (split it first)")
    tokens = list(tokens)
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"detokenize: token {index} is a {type(token).__name__}; expected a "
                            "str")
    return _detokenize(tokens, _treebank_backend()[1])


def _tokenize(text: str, treebank_words: Callable[[str], list[str]]) -> list[str]:
    """:func:`tokenize` with the given Treebank tokenizer (nltk's or the copy)."""
    text = _OPENING_QUOTE.sub(" `` ", _OWN_TOKEN.sub(r" \g<0> ", text))
    text, keep_whole = _sentence_end(text)
    spans = [match.span() for match in _KEEP_WHOLE.finditer(text)] + keep_whole
    text, restore = _shield(text, spans)
    return [_UNESCAPED.sub(r"\\\g<0>", restore(word)) for word in treebank_words(text)]


def _detokenize(tokens: list[str], treebank_text: Callable[[list[str]], str]) -> str:
    """:func:`detokenize` with the given Treebank detokenizer (nltk's or the copy)."""
    words: list[str] = []
    for token in tokens:
        word = _ESCAPED.sub(r"\1", token)
        if words and words[-1] == "`" and not word.startswith("`"):
            words[-1] += word
        else:
            words.append(word)
    return treebank_text(words)


def _sentence_end(text: str) -> tuple[str, list[tuple[int, int]]]:
    """SST's periods at the end of a sentence, where they differ from the Treebank tokenizer's
    (which splits the last period off the last word, whatever the word): ``text`` with spaces
    added, and the span of a last word whose period must stay (if any).

    * initials, acronyms and titles keep their period: ``Jason X.``, ``E.T.``, ``Mulholland Dr.``;
    * ``etc.``, ``Bros.``, ``No.`` keep it and a period follows: ``etc. .``;
    * a period apart after another word's period is split off that word too: ``for. .`` ->
      ``for . .``.
    """
    last = _LAST_WORD.search(text)
    if last is None or not last["word"].endswith(".") or last["word"].endswith(".."):
        return text, []
    word, periods = last["word"], last["periods"]
    abbreviation = _ABBREVIATIONS.fullmatch(word) is not None
    if _INITIALS.fullmatch(word) or abbreviation:
        if periods:
            return text, []
        if abbreviation:
            return f"{text[:last.end('word')]} .{text[last.end('word'):]}", []
        return text, [last.span("word")]
    if periods:
        return f"{text[:last.end('word') - 1]} {text[last.end('word') - 1:]}", []
    return text, []


def _shield(text: str, spans: list[tuple[int, int]]) -> tuple[str, Callable[[str], str]]:
    """``text`` with each span ``(start, end)`` that the Treebank tokenizer must not split (see
    ``_KEEP_WHOLE``) replaced by one private-use character that does not occur in it, and the
    function that puts the spans back into a token. Of overlapping spans the first is kept."""
    if not spans:
        return text, _unchanged
    free = (chr(code) for code in itertools.chain(*_PRIVATE_USE) if chr(code) not in text)
    placeholder: dict[str, str] = {}
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            original = text[start:end]
            if original not in placeholder:
                placeholder[original] = next(free)
            pieces += [text[last:start], placeholder[original]]
            last = end
    pieces.append(text[last:])
    original_of = {value: key for key, value in placeholder.items()}
    pattern = re.compile("|".join(original_of))
    return "".join(pieces), functools.partial(pattern.sub, lambda match: original_of[match[0]])


def _unchanged(word: str) -> str:
    return word


def _treebank_words(text: str) -> list[str]:
    """nltk's ``TreebankWordTokenizer().tokenize(text, convert_parentheses=True)``, copied."""
    for pattern, replacement in _TOKENIZER_RULES:
        text = pattern.sub(replacement, text)
    text = f" {text} "
    for pattern, replacement in _PADDED_TOKENIZER_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def _treebank_text(words: list[str]) -> str:
    """nltk's ``TreebankWordDetokenizer().detokenize(words, convert_parentheses=True)``, copied."""
    text = f" {' '.join(words)} "
    for pattern, replacement in _DETOKENIZER_RULES:
        text = pattern.sub(replacement, text)
    text = text.strip()
    for pattern, replacement in _DETOKENIZER_UNPADDED_RULES:
        text = pattern.sub(replacement, text)
    return text.strip()


@functools.lru_cache(maxsize=None)
def _treebank_backend() -> tuple[Callable[[str], list[str]], Callable[[list[str]], str]]:
    """nltk's Treebank tokenizer and detokenizer if nltk is installed, else the copies (looked up
    once: a failed import is slow to repeat)."""
    try:
        from nltk.tokenize.treebank import TreebankWordDetokenizer, TreebankWordTokenizer
    except ImportError:
        return _treebank_words, _treebank_text
    tokenizer, detokenizer = TreebankWordTokenizer(), TreebankWordDetokenizer()

    def nltk_words(text: str) -> list[str]:
        try:
            return tokenizer.tokenize(text, convert_parentheses=True)
        except TimeoutError:  # nltk bounds its matching by wall-clock time; the copy does not
            return _treebank_words(text)

    def nltk_text(words: list[str]) -> str:
        try:
            return detokenizer.detokenize(words, convert_parentheses=True)
        except TimeoutError:
            return _treebank_text(words)

    return nltk_words, nltk_text
