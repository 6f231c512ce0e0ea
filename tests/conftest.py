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
