"""Tokenizer and detokenizer of raw sentences (``treelstm.data.text``): SST's conventions on
hand-written sentences, the pure-Python copy against nltk's Treebank tokenizer (on all of SST and on
generated text), the fallback without nltk, and the round trip leaves -> text -> tokens on SST."""
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import load_script
from treelstm.data import read_ptb, to_ptb_string
from treelstm.data.ptb import SentimentTree
from treelstm.data.text import (_detokenize, _tokenize, _treebank_backend, _treebank_text,
                                _treebank_words, detokenize, tokenize)

treebank = pytest.importorskip("nltk.tokenize.treebank", reason="nltk is not installed "
                                                                "(pip install '.[test]')")
NLTK_TOKENIZER = treebank.TreebankWordTokenizer()
NLTK_DETOKENIZER = treebank.TreebankWordDetokenizer()

SST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"
needs_sst = pytest.mark.skipif(not SST_DIR.is_dir(), reason=f"SST not found at {SST_DIR} (the "
                                                            "shared data directory is only "
                                                            "present on the dev machine)")
SPLITS = ["test", "dev", pytest.param("train", marks=pytest.mark.slow)]
roundtrip = load_script("benchmarks/tokenizer_roundtrip.py")


def nltk_words(text):
    return NLTK_TOKENIZER.tokenize(text, convert_parentheses=True)


def nltk_text(words):
    return NLTK_DETOKENIZER.detokenize(words, convert_parentheses=True)


@pytest.fixture
def without_nltk(monkeypatch):
    """nltk made unimportable, and the tokenizer's choice of backend looked up again."""
    for name in [name for name in sys.modules if name == "nltk" or name.startswith("nltk.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "nltk", None)
    _treebank_backend.cache_clear()
    yield
    _treebank_backend.cache_clear()


# Raw text -> SST tokens, written out by hand from SST's conventions (module docstring).
EXAMPLES = {
    "clitics, brackets, dashes": ("It's a lovely film (really) -- isn't it?",
                                  ["It", "'s", "a", "lovely", "film", "-LRB-", "really", "-RRB-",
                                   "--", "is", "n't", "it", "?"]),
    "double quotes": ('He said "great" and left.',
                      ["He", "said", "``", "great", "''", "and", "left", "."]),
    "quote glued to a dash": ('easily--"Cherish" is',
                              ["easily", "--", "``", "Cherish", "''", "is"]),
    "single quotes": ("`Blood' is fun.", ["`", "Blood", "'", "is", "fun", "."]),
    "straight opening quote stays": ("He said 'hi' twice", ["He", "said", "'hi", "'", "twice"]),
    "negations": ("I can't, won't, cannot.",
                  ["I", "ca", "n't", ",", "wo", "n't", ",", "can", "not", "."]),
    "gonna stays whole": ("you're gonna like it, I'll bet",
                          ["you", "'re", "gonna", "like", "it", ",", "I", "'ll", "bet"]),
    "slashes and asterisks": ("a writer/director and/or M*A*S*H ***",
                              ["a", "writer\\/director", "and\\/or", "M", "\\*", "A", "\\*", "S",
                               "\\*", "H", "\\*\\*\\*"]),
    "hyphens and ellipsis": ("coming-of-age -- and ... so on",
                             ["coming-of-age", "--", "and", "...", "so", "on"]),
    "inner abbreviations": ("Mr. Deeds visits the U.S. today.",
                            ["Mr.", "Deeds", "visits", "the", "U.S.", "today", "."]),
    "final initial": ("I was baffled by Jason X.", ["I", "was", "baffled", "by", "Jason", "X."]),
    "final title": ("Lynch's Mulholland Dr.", ["Lynch", "'s", "Mulholland", "Dr."]),
    "final initials in quotes": ('I love "E.T."', ["I", "love", "``", "E.T.", "''"]),
    "final initial in brackets": ("(by Jason X.)", ["-LRB-", "by", "Jason", "X.", "-RRB-"]),
    "final I is a word": ("Nobody liked it more than I.",
                          ["Nobody", "liked", "it", "more", "than", "I", "."]),
    "final no. doubles": ("Um, no.", ["Um", ",", "no.", "."]),
    "final etc. doubles": ("sex, drugs, etc.", ["sex", ",", "drugs", ",", "etc.", "."]),
    "periods apart": ("The gags are puerile. .", ["The", "gags", "are", "puerile", ".", "."]),
    "no-break space joins": ("8\xa01/2 Women", ["8\xa01\\/2", "Women"]),
    "thin space splits": ("8\u20091/2 Women", ["8", "1\\/2", "Women"]),
    "apostrophe words": ("rock 'n' roll and good ol' boys, 'em, the '70s",
                         ["rock", "'n'", "roll", "and", "good", "ol'", "boys", ",", "'em", ",",
                          "the", "'70s"]),
    "ampersands": ("S&M and PB&J", ["S&M", "and", "PB", "&", "J"]),
    "?! runs": ("Wow!? Really?!?", ["Wow", "!?", "Really", "?!?"]),
    "other brackets": ("[a] {b} <c>", ["-LSB-", "a", "-RSB-", "-LCB-", "b", "-RCB-", "<", "c",
                                       ">"]),
    "symbols": ("$5 & 10% off #1 @home; yes",
                ["$", "5", "&", "10", "%", "off", "#", "1", "@", "home", ";", "yes"]),
    "empty": ("", []),
    "only spaces": (" \t\n", []),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_tokenize_examples(name):
    text, expected = EXAMPLES[name]
    assert tokenize(text) == expected


@pytest.mark.parametrize("name", EXAMPLES)
def test_tokenize_examples_without_nltk(name, without_nltk):
    assert _treebank_backend()[0] is _treebank_words
    text, expected = EXAMPLES[name]
    assert tokenize(text) == expected


def test_detokenize_examples():
    assert detokenize(["It", "'s", "``", "lovely", "''", "-LRB-", "really", "-RRB-", "."]) == \
        "It's \"lovely\" (really)."
    assert detokenize(["`", "Blood", "'", "is", "n't", "a", "writer\\/director", "\\*"]) == \
        "`Blood' isn't a writer/director *"
    assert detokenize(["ca", "n't", "--", "wo", "n't", "...", "so"]) == "can't--won't...so"
    assert detokenize([]) == ""
    assert detokenize(iter(["a", ","])) == "a,"


@pytest.mark.parametrize("bad", [b"bytes", None, 3, ["a", "list"]])
def test_tokenize_refuses_non_str(bad):
    with pytest.raises(TypeError, match=f"tokenize: expected a str, got {type(bad).__name__}"):
        tokenize(bad)


def test_detokenize_refuses_a_str_and_non_str_tokens():
    with pytest.raises(TypeError, match="expected a sequence of str tokens, got a str"):
        detokenize("It 's")
    with pytest.raises(TypeError, match="token 1 is a int; expected a str"):
        detokenize(["a", 3])
    with pytest.raises(TypeError, match="token 0 is a NoneType"):
        detokenize([None])


# ------------------------------------------------------------------ the copy against nltk
PIECES = ["a", "n", "t", "s", "A", "T", "S", "M", "1", "2", " ", " ", "  ", "\n", "\t", "\xa0",
          "\x1c", "\u2009", "'", '"', "`", "``", "''", "(", ")", "[", "]", "{", "}", "<", ">",
          ".", "...", ",", ":", ";", "!", "?", "-", "--", "*", "/", "\\", "&", "$", "%", "#", "@",
          "can", "not", "gon", "na", "wan", "got", "ta", "lem", "me", "'t", "is", "was", "d",
          "'ye", "more", "'n", "n't", "'s", "'S", "'ll", "'re", "'ve", "'d", "'m", "ol'", "etc",
          "no", "Dr", "X", "I", "é", "٣"]
raw_texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
TOKENS = ["a", "it", "'s", "n't", "ca", "wo", "can", "not", "gon", "na", "'t", "is", ",", ".",
          "...", "--", "-", "``", "''", "'", "`", "-LRB-", "-RRB-", "-LSB-", "-RCB-", "?", "!",
          ";", ":", "$", "#", "%", "&", "\\/", "\\*", "'ll", "'em", "X.", "etc."]
token_lists = st.lists(st.sampled_from(TOKENS), max_size=20)


# Where Python's re and the regex module nltk uses differ (\x1c-\x1f are whitespace to re and
# str.split, not to regex), and rules that other rules mostly cover.
EDGE_TEXTS = ["It ends.\x1c", "It ends.\x1f ", "It ends.\u2009", "It ends.\xa0", "a\x1c'' b",
              "wanna\x1cgo", "wanna\xa0go", "'t\x1cis", "AT&T, @me #1 50%; $2", "x' y'' z",
              "can not cannot CANNOT gimme lemme gotta d'ye more'n 'tis 'twas",
              '"a" ("b") [\'\'c\'\'] {<d>}', "a,b 1,000 x: y:", "end...", "Hi!! Really?! ..."]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_copy_tokenizes_edge_texts_like_nltk(text):
    assert _treebank_words(text) == nltk_words(text)
    assert _tokenize(text, _treebank_words) == _tokenize(text, nltk_words)


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_copy_detokenizes_edge_texts_like_nltk(text):
    words = text.split(" ")
    assert _treebank_text(words) == nltk_text(words)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_texts)
def test_copy_tokenizes_like_nltk(text):
    assert _treebank_words(text) == nltk_words(text)
    assert _tokenize(text, _treebank_words) == _tokenize(text, nltk_words)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_lists)
def test_copy_detokenizes_like_nltk(tokens):
    assert _treebank_text(tokens) == nltk_text(tokens)
    assert _detokenize(tokens, _treebank_text) == _detokenize(tokens, nltk_text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(raw_texts, st.text(max_size=40)))
def test_tokens_can_be_written_as_sst_leaves(text):
    tokens = tokenize(text)
    for token in tokens:
        assert token and not any(char in token for char in " \t\n\r\f\v()"), tokens
        assert "/" not in token.replace("\\/", "") and "*" not in token.replace("\\*", "")
    if tokens:  # SST's writer accepts them as leaves
        num = len(tokens)
        to_ptb_string(SentimentTree(tokens=tokens, parent=[num] * num + [-1],
                                    labels=[2] * (num + 1)))


@needs_sst
@pytest.mark.parametrize("split", SPLITS)
def test_copy_equals_nltk_on_sst(split):
    for number, tree in enumerate(read_ptb(SST_DIR / f"{split}.txt"), 1):
        for text in (" ".join(tree.tokens), _detokenize(tree.tokens, nltk_text)):
            assert _treebank_words(text) == nltk_words(text), f"{split}.txt:{number}"
            assert _tokenize(text, _treebank_words) == _tokenize(text, nltk_words), \
                f"{split}.txt:{number}"
        words = [token.replace("\\/", "/").replace("\\*", "*") for token in tree.tokens]
        assert _treebank_text(words) == nltk_text(words), f"{split}.txt:{number}"


# ------------------------------------------------------------------ round trip on SST
# Sentences that do not come back: SST's own quote direction ('-LRB- '' Notting Hill `` -RRB-')
# and "- --" (the tokenizer reads "---" as "-- -").
ROUND_TRIP = {"test": (2210, 2210, []), "dev": (1101, 1100, [584]),
              "train": (8544, 8542, [3423, 7201])}


@needs_sst
@pytest.mark.parametrize("split", SPLITS)
def test_round_trip_on_sst(split):
    sentences, identical, lines = ROUND_TRIP[split]
    result = roundtrip.round_trip(SST_DIR / f"{split}.txt", "auto", shown=10)
    assert (result["sentences"], result["identical"]) == (sentences, identical)
    assert [line for line, _, _ in result["differences"]] == lines


def test_round_trip_script_on_a_small_treebank(tmp_path, capsys):
    lines = ["(3 (2 It) (4 (2 's) (3 (2 a) (4 (4 lovely) (2 film)))))",
             "(2 (2 (2 A) (2 (2 S) (2 (2 \\*) (2 H)))) (2 (2 ``) (2 (2 -LRB-) (2 -RRB-))))",
             "(2 (2 you) (2 (2 -) (2 (2 --) (2 Decasia))))"]  # "- --" comes back as "-- -"
    (tmp_path / "dev.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for backend in ("auto", "python"):
        result = roundtrip.main(["--data", str(tmp_path), "--split", "dev", "--backend", backend])
        assert result["dev"]["sentences"] == 3 and result["dev"]["identical"] == 2
        assert [line for line, _, _ in result["dev"]["differences"]] == [3]
        out = capsys.readouterr().out
        assert ["dev", "3", "2", "66.67"] in [line.split() for line in out.splitlines()]
        assert "3: ['-'] -> []; ['Decasia'] -> ['-Decasia'] | you ---Decasia" in out
    with pytest.raises(SystemExit):
        roundtrip.main(["--data", str(tmp_path), "--split", "test"])
    assert "no test.txt in" in capsys.readouterr().err
