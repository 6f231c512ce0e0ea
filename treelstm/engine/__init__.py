"""Native executor: level-scheduled, bottom-up, in plain torch (CPU and CUDA).

Node states live in two ``[N + 1, H]`` buffers whose rows are the nodes level by level
(:attr:`TreeBatch.level_order <treelstm.batch.LevelOrder>`), so each level is one contiguous block
of rows, written once, in place; the extra row is the zero state of an empty N-ary slot. Each
level is one step over all its nodes in all trees: one gather of the children's states, one
matrix product for their ``U h`` written into a preallocated buffer of activations, and the node
update of :mod:`treelstm.functional`, in place. This module schedules: every formula is a
function of :mod:`treelstm.functional`, which stays the reference; on the CPU in float32 the
level steps run as C (:mod:`treelstm.engine.kernels`, ``kernels.c``: the same formulas, one pass
per row, and where torch exports its BLAS ``sgemm`` a whole layer's levels in one call), tested
against it.

A layer is one :class:`torch.autograd.Function` (:func:`layer`). Its backward walks the levels
top-down by hand instead of letting autograd record and replay a dozen ops per level: the factors
of the derivatives that do not depend on the incoming gradients
(:func:`~treelstm.functional.backward_factors`) are computed for all nodes at once, then each
level is a few multiplications (:func:`~treelstm.functional.preactivation_grads`), one matrix
product and two ``index_add_`` into the children's gradient buffers. The weight gradients are one
matrix product each over all levels. Activations stay O(num_nodes * H).

Work skipped: leaves have no children, so no forget gate and no ``U h``; :func:`layer` projects
only the ``i | g | o`` rows of ``W_ih`` when every input row is a leaf (constituency trees), and
nodes without input get ``b_ih`` folded into the bias of their ``U h`` product. A Child-Sum node
multiplies ``U_{iog}`` with the *sum* of its children's ``h`` once, and only ``U_f`` per child.

Modules: ``layer`` (the entry point and the autograd Function), ``nary`` and ``childsum`` (the
kernels), ``steps`` (what the kernels share), ``cache`` (:class:`ProjectionCache`), ``top_down``
(the top-down pass of bidirectional layers), ``kernels`` (the C level steps: compiled on first
use, the pure-torch ops without a compiler).
"""
from .cache import ProjectionCache
from .layer import layer
from .top_down import top_down_layer

__all__ = ["layer", "top_down_layer", "ProjectionCache"]
