"""load_vectors: GloVe / word2vec text files into an nn.Embedding."""
import pytest
import torch
from torch import nn

from treelstm.data import VectorCoverage, Vocab, load_vectors

GLOVE = """the 0.1 0.2 0.3
film -1 2.5 3e-2
zebra 9 9 9
good 0.5 -0.5 0
"""


def make_vocab(lower=False):
    # itos: <pad> <unk> the film good bad
    return Vocab(["<pad>", "<unk>", "the", "film", "good", "bad"], lower=lower)


def write(tmp_path, text, name="vec.txt", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_glove_rows_and_coverage(tmp_path):
    vocab = make_vocab()
    embedding, coverage = load_vectors(write(tmp_path, GLOVE), vocab)
    assert isinstance(embedding, nn.Embedding)
    assert embedding.weight.shape == (6, 3)
    weight = embedding.weight.detach()
    torch.testing.assert_close(weight[vocab["the"]], torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(weight[vocab["film"]], torch.tensor([-1, 2.5, 0.03]))
    torch.testing.assert_close(weight[vocab["good"]], torch.tensor([0.5, -0.5, 0.0]))
    assert torch.all(weight[vocab.pad_index] == 0)  # padding row stays zero
    assert embedding.padding_idx == vocab.pad_index
    # Words only (no pad, no unk): the, film, good found; bad missing.
    assert coverage == VectorCoverage(found=3, total=4, fraction=0.75, missing=["bad"])


def test_word2vec_header_line(tmp_path):
    path = write(tmp_path, "4 3\n" + GLOVE)
    embedding, coverage = load_vectors(path, make_vocab())
    assert embedding.embedding_dim == 3
    assert (coverage.found, coverage.total) == (3, 4)
    torch.testing.assert_close(embedding.weight.detach()[2], torch.tensor([0.1, 0.2, 0.3]))


def test_header_disagrees_with_dim(tmp_path):
    path = write(tmp_path, "4 5\n" + GLOVE)
    with pytest.raises(ValueError, match=r"vec\.txt:1: header says dim 5, expected 3"):
        load_vectors(path, make_vocab(), dim=3)


def test_header_disagrees_with_lines(tmp_path):
    path = write(tmp_path, "4 5\n" + GLOVE)
    with pytest.raises(ValueError, match=r"vec\.txt:2: expected 5 values after the word, got 3"):
        load_vectors(path, make_vocab())


def test_fills_existing_embedding_in_place(tmp_path):
    vocab = make_vocab()
    torch.manual_seed(0)
    embedding = nn.Embedding(len(vocab), 3)
    before = embedding.weight.detach().clone()
    result, coverage = load_vectors(write(tmp_path, GLOVE), vocab, embedding=embedding)
    assert result is embedding
    after = embedding.weight.detach()
    torch.testing.assert_close(after[vocab["the"]], torch.tensor([0.1, 0.2, 0.3]))
    # Rows without a vector keep their values: pad, unk, bad.
    for row in (vocab.pad_index, vocab.unk_index, vocab["bad"]):
        assert torch.equal(after[row], before[row])
    assert embedding.weight.requires_grad


def test_float64_embedding(tmp_path):
    vocab = make_vocab()
    embedding = nn.Embedding(len(vocab), 3, dtype=torch.float64)
    load_vectors(write(tmp_path, GLOVE), vocab, embedding=embedding)
    assert embedding.weight[vocab["film"]].tolist() == [-1.0, 2.5, 0.03]


def test_embedding_shape_errors(tmp_path):
    path = write(tmp_path, GLOVE)
    with pytest.raises(ValueError, match=r"embedding has 5 rows; expected len\(vocab\) = 6"):
        load_vectors(path, make_vocab(), embedding=nn.Embedding(5, 3))
    with pytest.raises(ValueError, match=r"dim=4 but the embedding has embedding_dim=3"):
        load_vectors(path, make_vocab(), embedding=nn.Embedding(6, 3), dim=4)
    with pytest.raises(ValueError, match=r"vec\.txt:1: expected 4 values after the word, got 3"):
        load_vectors(path, make_vocab(), embedding=nn.Embedding(6, 4))
    with pytest.raises(TypeError, match="embedding must be an nn.Embedding, got Linear"):
        load_vectors(path, make_vocab(), embedding=nn.Linear(3, 6))
    with pytest.raises(TypeError, match="vocab must be a Vocab, got dict"):
        load_vectors(path, {"the": 2})
    with pytest.raises(ValueError, match="dim must be a positive integer, got 0"):
        load_vectors(path, make_vocab(), dim=0)


BAD_LINES = {
    "too few values": ("film 1 2", r"expected 3 values after the word, got 2"),
    "too many values": ("film 1 2 3 4", r"expected 3 values after the word, got 4"),
    "non-float": ("film 1 x 3", r"value 'x' is not a float"),
    "nan": ("film 1 nan 3", r"value 'nan' is not finite"),
    "word only": ("film", r"expected 3 values after the word, got 0"),
    "blank line inside": ("", r"empty line"),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_bad_line_names_file_and_line(tmp_path, name):
    line, reason = BAD_LINES[name]
    path = write(tmp_path, "the 1 2 3\ngood 4 5 6\n" + line + "\nbad 7 8 9\n")
    with pytest.raises(ValueError, match=r"vec\.txt:3: " + reason):
        load_vectors(path, make_vocab())


@pytest.mark.parametrize("name", [n for n in BAD_LINES if "inside" not in n])
def test_bad_line_is_an_error_even_for_words_not_in_the_vocabulary(tmp_path, name):
    line, reason = BAD_LINES[name]
    path = write(tmp_path, "the 1 2 3\ngood 4 5 6\n" + line.replace("film", "zzz") + "\n")
    with pytest.raises(ValueError, match=r"vec\.txt:3: " + reason):
        load_vectors(path, make_vocab())


def test_crlf_bom_trailing_spaces_and_blank_end(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_bytes(b"\xef\xbb\xbfthe 0.1 0.2 0.3 \r\ngood 1 2 3\r\n\r\n")
    embedding, coverage = load_vectors(path, make_vocab())
    assert embedding.embedding_dim == 3 and coverage.found == 2
    torch.testing.assert_close(embedding.weight.detach()[4], torch.tensor([1.0, 2.0, 3.0]))


def test_word_with_spaces_and_no_break_space(tmp_path):
    vocab = Vocab(["<pad>", "<unk>", ". . .", "8\u00a01/2"])
    path = write(tmp_path, "the 0 0 0\n. . . 1 2 3\n8\u00a01/2 4 5 6\n")
    embedding, coverage = load_vectors(path, vocab)
    assert embedding.weight[2].tolist() == [1.0, 2.0, 3.0]
    assert embedding.weight[3].tolist() == [4.0, 5.0, 6.0]
    assert coverage.fraction == 1.0


def test_lower_vocab_prefers_lower_case_file_word(tmp_path):
    vocab = make_vocab(lower=True)
    path = write(tmp_path, "The 9 9 9\nthe 1 1 1\nFILM 2 2 2\nFilm 3 3 3\n")
    embedding, coverage = load_vectors(path, vocab)
    assert embedding.weight[vocab["the"]].tolist() == [1.0, 1.0, 1.0]  # exact beats earlier "The"
    assert embedding.weight[vocab["film"]].tolist() == [2.0, 2.0, 2.0]  # first case variant
    assert coverage.found == 2


def test_cased_vocab_matches_exactly_and_first_occurrence_wins(tmp_path):
    vocab = Vocab(["<pad>", "<unk>", "The", "the"])
    path = write(tmp_path, "the 1 1\nThe 2 2\nthe 3 3\n")
    embedding, coverage = load_vectors(path, vocab)
    assert embedding.weight[2].tolist() == [2.0, 2.0]
    assert embedding.weight[3].tolist() == [1.0, 1.0]
    assert coverage.found == 2


def test_no_coverage(tmp_path):
    embedding, coverage = load_vectors(write(tmp_path, "zebra 1 2\n"), make_vocab())
    assert coverage == VectorCoverage(found=0, total=4, fraction=0.0,
                                      missing=["the", "film", "good", "bad"])
    assert embedding.weight.shape == (6, 2)


def test_empty_file(tmp_path):
    with pytest.raises(ValueError, match=r"vec\.txt: no word vectors found"):
        load_vectors(write(tmp_path, ""), make_vocab())
    with pytest.raises(ValueError, match=r"vec\.txt: no word vectors found"):
        load_vectors(write(tmp_path, "0 3\n"), make_vocab())


def test_invalid_utf8(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_bytes(b"the 1 2\ncaf\xe9 1 2\n")
    with pytest.raises(ValueError, match=r"vec\.txt:2: not valid UTF-8"):
        load_vectors(path, make_vocab())
