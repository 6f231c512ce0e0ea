import pytest
import torch


def _dgl_available() -> bool:
    try:
        from treelstm.dgl import import_dgl

        import_dgl()
        return True
    except ImportError:
        return False


HAS_DGL = _dgl_available()
needs_dgl = pytest.mark.skipif(not HAS_DGL, reason="dgl is not installed (pip install '.[dgl]'); "
                                                   "the DGL backend cannot be tested here")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

BACKENDS = ["native", pytest.param("dgl", marks=needs_dgl)]
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])]


@pytest.fixture
def one_thread():
    """Small batches run fastest on one thread, and much slower with two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_word_lines():
    """Five one-word trees in PTB form, one per label, one with a non-ASCII word."""
    return ["(4 Wonderful)", "(0 awful)", "(2 okay)", "(3 \u00e9l\u00e9gant)", "(1 meh)"]


@pytest.fixture
def balanced_line():
    """``balanced_line(num_tokens)``: a balanced binary sentiment tree over ``num_tokens`` tokens
    w0, w1, ..., built without recursion."""
    def build(num_tokens):
        pieces, stack = [], [(0, num_tokens)]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                pieces.append(item)
                continue
            low, high = item
            if high - low == 1:
                pieces.append(f"({low % 5} w{low})")
                continue
            middle = (low + high) // 2
            pieces.append(f"({(low + high) % 5} ")
            stack += [")", (middle, high), " ", (low, middle)]
        return "".join(pieces)
    return build
