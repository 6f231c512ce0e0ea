"""Vocab: building, lookup, JSON save/load and its errors."""
import json

import pytest

from treelstm.data import Vocab

SENTENCES = [["the", "film", "is", "good"], ["the", "plot", "is", "bad"], ["The", "end"]]


def test_build_order_and_specials():
    vocab = Vocab.build(SENTENCES)
    # pad, unk, then by count (the 2, is 2), ties alphabetically.
    assert vocab.itos == ["<pad>", "<unk>", "is", "the", "The", "bad", "end", "film", "good",
                          "plot"]
    assert (vocab.pad_index, vocab.unk_index) == (0, 1)
    assert vocab["<pad>"] == 0 and vocab["<unk>"] == 1
    assert len(vocab) == 10
    assert all(vocab[token] == i for i, token in enumerate(vocab.itos))


def test_unknown_tokens_map_to_unk():
    vocab = Vocab.build(SENTENCES)
    assert vocab["zebra"] == vocab.unk_index
    assert "zebra" not in vocab and "film" in vocab
    assert vocab.encode(["the", "zebra", "film"]) == [3, 1, 7]
    assert vocab.decode([3, 1, 7]) == ["the", "<unk>", "film"]


def test_min_count():
    vocab = Vocab.build(SENTENCES, min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "is", "the"]
    assert vocab["film"] == vocab.unk_index


def test_lower():
    vocab = Vocab.build(SENTENCES, lower=True)
    assert vocab.itos[:4] == ["<pad>", "<unk>", "the", "is"]  # "the" 3 times with "The"
    assert "The" not in vocab.itos
    assert vocab["THE"] == vocab["the"] == 2
    assert "FILM" in vocab


def test_custom_specials_and_specials_in_data():
    vocab = Vocab.build([["[UNK]", "a", "[PAD]", "a"]], unk="[UNK]", pad="[PAD]")
    assert vocab.itos == ["[PAD]", "[UNK]", "a"]


def test_build_accepts_a_generator():
    vocab = Vocab.build(tokens for tokens in SENTENCES)
    assert vocab == Vocab.build(SENTENCES)


def test_build_errors():
    with pytest.raises(TypeError, match=r"item 0 is the str 'the film'. For one sentence pass"):
        Vocab.build(["the film", "x"])
    with pytest.raises(TypeError, match="got a str"):
        Vocab.build("the film")
    with pytest.raises(TypeError, match=r"tokens must be str; item 1 holds 3 \(int\)"):
        Vocab.build([["a"], ["b", 3]])
    with pytest.raises(ValueError, match="min_count must be an integer >= 1, got 0"):
        Vocab.build(SENTENCES, min_count=0)
    with pytest.raises(ValueError, match="unk and pad must differ"):
        Vocab.build(SENTENCES, unk="x", pad="x")
    with pytest.raises(TypeError, match="expected a list of tokens, got a str"):
        Vocab.build(SENTENCES).encode("the film")


def test_constructor_checks_itos():
    with pytest.raises(ValueError, match=r"must start with pad '<pad>' and unk '<unk>'"):
        Vocab(["<unk>", "<pad>", "a"])
    with pytest.raises(ValueError, match="token 'a' appears more than once"):
        Vocab(["<pad>", "<unk>", "a", "a"])


@pytest.mark.parametrize("lower", [False, True])
def test_save_load_round_trip(tmp_path, lower):
    vocab = Vocab.build(SENTENCES + [["naïve", "是", "8\u00a01/2"]], lower=lower)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab
    assert loaded.itos == vocab.itos and loaded.lower == lower
    assert loaded.encode(["The", "是", "zzz"]) == vocab.encode(["The", "是", "zzz"])
    assert loaded is not vocab
    Vocab.load(str(tmp_path / "vocab.json"))  # str paths too


def test_saved_file_is_json(tmp_path):
    Vocab.build([["a"]]).save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert data["itos"] == ["<pad>", "<unk>", "a"]


BAD_FILES = {
    "not json": ("{\"itos\": [", r"vocab\.json: not a valid vocabulary JSON file"),
    "empty": ("", r"vocab\.json: not a valid vocabulary JSON file"),
    "a list": ("[1, 2]", r"vocab\.json: expected a JSON object with \"format\""),
    "other format": ('{"format": "x"}', r"vocab\.json: expected a JSON object"),
    "version": ('{"format": "treelstm.Vocab", "version": 9}',
                r"vocab\.json: vocabulary version 9; this library reads version 1"),
    "missing itos": ('{"format": "treelstm.Vocab", "version": 1, "lower": false, '
                     '"unk": "<unk>", "pad": "<pad>"}',
                     r"vocab\.json: field 'itos' should be a list, got None"),
    "lower not bool": ('{"format": "treelstm.Vocab", "version": 1, "lower": "no", '
                       '"unk": "<unk>", "pad": "<pad>", "itos": ["<pad>", "<unk>"]}',
                       r"vocab\.json: field 'lower' should be a bool"),
    "duplicate": ('{"format": "treelstm.Vocab", "version": 1, "lower": false, '
                  '"unk": "<unk>", "pad": "<pad>", "itos": ["<pad>", "<unk>", "a", "a"]}',
                  r"vocab\.json: Vocab: token 'a' appears more than once"),
    "bad specials": ('{"format": "treelstm.Vocab", "version": 1, "lower": false, '
                     '"unk": "<unk>", "pad": "<pad>", "itos": ["a", "b"]}',
                     r"vocab\.json: Vocab: itos must start with pad"),
    "non-str token": ('{"format": "treelstm.Vocab", "version": 1, "lower": false, '
                      '"unk": "<unk>", "pad": "<pad>", "itos": ["<pad>", "<unk>", 3]}',
                      r"vocab\.json: Vocab: tokens must be str; got 3"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_load_bad_file_names_the_file(tmp_path, name):
    text, message = BAD_FILES[name]
    (tmp_path / "vocab.json").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Vocab.load(tmp_path / "vocab.json")


def test_load_invalid_utf8(tmp_path):
    (tmp_path / "vocab.json").write_bytes(b'{"itos": ["\xff"]}')
    with pytest.raises(ValueError, match=r"vocab\.json: not valid UTF-8"):
        Vocab.load(tmp_path / "vocab.json")
