"""TreeLSTM: stacked Tree-LSTM layers over a TreeBatch, with ``nn.LSTM``'s parameters and outputs.

The sentiment classifier on top of it is :mod:`treelstm.classifier`; its names
(``TreeLSTMClassifier``, ``ClassifierOutput``, ``TreeClassifierOutput``) are importable from here
as well.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Literal, NamedTuple, Optional, Sequence, Union, cast, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import engine, functional
from .batch import TreeBatch
from .checks import check_input_tensor, check_positive_ints, is_int, is_number

CELLS = ("childsum", "nary")
BACKENDS = ("native", "dgl")


class _IndexKind(NamedTuple):
    """``input_index`` or ``input_rows``, for the messages of :meth:`TreeLSTM._as_index`."""

    name: str
    what: str  # "node ids"
    holds: str  # "holds node"
    expected: str  # "node ids in"
    argument: str  # which positional argument it is, and what it means

    def out_of_range(self, value: int, size: int) -> ValueError:
        return ValueError(f"TreeLSTM: {self.name} {self.holds} {value}; expected {self.expected} "
                          f"[0, {size})")

    def not_a_state(self, got: str) -> TypeError:
        """For ``nn.LSTM``'s habit ``forward(input, (h_0, c_0))``."""
        return TypeError(f"TreeLSTM: takes no initial state (h_0, c_0), unlike nn.LSTM: states "
                         f"start at zero at the leaves; the {self.argument}, got {got}")


_NODE_IDS = _IndexKind("input_index", "node ids", "holds node", "node ids in",
                       "third argument is input_index (the node ids that receive input rows)")
_ROW_NUMBERS = _IndexKind("input_rows", "row numbers of input", "holds row", "rows of input, in",
                          "fourth argument is input_rows (the row of input that each node of "
                          "input_index reads)")


def _is_dgl_graph(value: Any) -> bool:
    return type(value).__module__.startswith("dgl") and hasattr(value, "batch_num_nodes")


@functools.lru_cache(maxsize=None)
def _parameter_names(k: int, reverse: bool) -> tuple[str, str, str, str]:
    """The names of layer ``k``'s ``weight_ih, weight_hh, bias_ih, bias_hh``."""
    suffix = f"l{k}_reverse" if reverse else f"l{k}"
    return (f"weight_ih_{suffix}", f"weight_hh_{suffix}", f"bias_ih_{suffix}",
            f"bias_hh_{suffix}")


class TreeLSTM(nn.Module):
    r"""A multi-layer Tree-LSTM over a batch of trees, evaluated bottom-up (and top-down with
    ``bidirectional=True``).

    Each layer applies a Child-Sum (:class:`ChildSumTreeLSTMCell`) or N-ary
    (:class:`NaryTreeLSTMCell`) cell at every node once all its children are done. Layer
    :math:`k > 0` takes layer :math:`k-1`'s :math:`h` at the same node as input, multiplied by a
    dropout mask (probability ``dropout``) in training, as ``nn.LSTM`` does. On a chain tree
    (node :math:`t`'s parent is :math:`t+1`) a Child-Sum ``TreeLSTM`` computes exactly ``nn.LSTM``,
    and ``load_state_dict(nn.LSTM(...).state_dict())`` works.

    With ``bidirectional=True`` each layer's bottom-up pass (:math:`h^\uparrow, c^\uparrow`) is
    followed by a top-down pass, roots first: at node :math:`j` with parent :math:`p` an LSTM step
    whose input is :math:`h^\uparrow_j` and whose previous state is the parent's top-down state
    (zero at a root),

    .. math::
        \begin{array}{ll}
        (i, f, g, o) = (\sigma, \sigma, \tanh, \sigma)\big(W^{\downarrow}_{ih} h^\uparrow_j
            + b^{\downarrow}_{ih} + W^{\downarrow}_{hh} h^\downarrow_p + b^{\downarrow}_{hh}\big) \\
        c^\downarrow_j = i \odot g + f \odot c^\downarrow_p, \qquad
        h^\downarrow_j = o \odot \tanh(c^\downarrow_j)
        \end{array}

    so that every node's output :math:`[h^\uparrow_j; h^\downarrow_j]` sees the whole tree, its
    subtree from below and the rest from above. The two are concatenated, as ``nn.LSTM``'s
    directions are, and are the next layer's input. (Unlike ``nn.LSTM``'s reverse direction, the
    top-down pass reads :math:`h^\uparrow`, not :math:`x`: inner nodes of constituency trees
    have no :math:`x`.)

    Args:
        input_size: The number of expected features in the input `x`
        hidden_size: The number of features in the hidden state `h`
        num_layers: Number of stacked Tree-LSTM layers. Default: 1
        cell: ``"childsum"`` (any number of children) or ``"nary"`` (at most ``arity`` ordered
            children). Default: ``"childsum"``
        arity: The number of child slots of ``cell="nary"``; must be ``None`` for Child-Sum.
        bias: If ``False``, no bias weights. Default: ``True``
        dropout: Dropout probability on the outputs of each layer except the last. Default: 0
        backend: ``"native"`` (level-scheduled plain torch, CPU and CUDA) or ``"dgl"`` (DGL message
            passing; needs the optional ``dgl`` package). Both use the same parameters and give
            the same results. Default: ``"native"``
        bidirectional: If ``True``, a top-down pass after each bottom-up one (above).
            Default: ``False``

    Inputs: input, batch, input_index
        - **input** of shape `(N_nodes, H_in)`: the input at every node, rows in batch node order;
          or `(N_in, H_in)` together with ``input_index``. Floating point, in the parameters'
          dtype and on their device (as ``nn.LSTM``: a ValueError otherwise; TypeError for
          integer, bool or complex input), except under ``torch.autocast``.
        - **batch**: a :class:`TreeBatch`, or a DGL graph with edges child -> parent.
        - **input_index** (optional) of shape `(N_in)`: the nodes that get input (e.g. the leaves);
          row `j` of ``input`` goes to node ``input_index[j]``. All other nodes get zero input and
          no :math:`W_{ih} x` is computed for them.
        - **input_rows** (optional, with ``input_index``) of shape `(N_in)`: node
          ``input_index[j]`` reads row ``input_rows[j]`` of ``input``, which is then a table of
          any number of rows, e.g. an embedding's ``weight`` with ``input_rows`` the token ids.
          Each distinct row is projected (:math:`W_{ih} x`) once however many nodes read it;
          after :meth:`cache_projections`, calls without autograd (inference) on the native
          backend keep the whole table's projection for the next calls.

    Unlike ``nn.LSTM`` there is no initial state argument: states start at zero below the
    leaves (a TypeError says so if ``(h_0, c_0)`` is passed as the third argument).

    Outputs: output, (h_n, c_n)
        - **output** of shape `(N_nodes, D * H_out)`: the last layer's `h` at every node
          (bidirectional: :math:`[h^\uparrow; h^\downarrow]`).
        - **h_n**, **c_n** of shape `(D * num_layers, N_trees, H_out)`: each layer's state at each
          tree's root; bidirectional: layer `k`'s bottom-up root state at `2k`, its top-down
          state at the root (the first step of the top-down pass) at `2k + 1`.

    where `D` is 2 if ``bidirectional=True``, otherwise 1.

    Attributes:
        weight_ih_l[k]: `(4*hidden_size, input_size)` for `k = 0`, else
            `(4*hidden_size, D*hidden_size)`; gate order ``i|f|g|o``
        weight_hh_l[k]: `(4*hidden_size, hidden_size)` (Child-Sum) or
            `((arity+3)*hidden_size, arity*hidden_size)` (N-ary)
        bias_ih_l[k]: `(4*hidden_size)`
        bias_hh_l[k]: `(4*hidden_size)` (Child-Sum) or `((arity+3)*hidden_size)` (N-ary)
        weight_ih_l[k]_reverse, weight_hh_l[k]_reverse: `(4*hidden_size, hidden_size)`, the
            top-down pass's (bidirectional only)
        bias_ih_l[k]_reverse, bias_hh_l[k]_reverse: `(4*hidden_size)` (bidirectional only)

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Examples::

        >>> batch = TreeBatch.from_parents([[-1, 0, 0], [2, 2, -1]])
        >>> model = TreeLSTM(10, 20, cell="nary", arity=2)
        >>> output, (h_n, c_n) = model(torch.randn(6, 10), batch)
        >>> output.shape, h_n.shape
        (torch.Size([6, 20]), torch.Size([1, 2, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 cell: str = "childsum", arity: Optional[int] = None, bias: bool = True,
                 dropout: float = 0.0, backend: str = "native", device=None, dtype=None,
                 bidirectional: bool = False) -> None:
        super().__init__()
        check_positive_ints("TreeLSTM", input_size=input_size, hidden_size=hidden_size,
                            num_layers=num_layers)
        if cell not in CELLS:
            raise ValueError(f"TreeLSTM: cell must be one of {CELLS}; got {cell!r}")
        if cell == "nary" and (not is_int(arity) or arity <= 0):
            raise ValueError(f"TreeLSTM: cell='nary' needs arity, a positive integer; got {arity!r}")
        if cell == "childsum" and arity is not None:
            raise ValueError(f"TreeLSTM: arity is for cell='nary' only; got arity={arity!r} with "
                             "cell='childsum'")
        if not is_number(dropout) or not 0 <= dropout <= 1:
            raise ValueError(f"TreeLSTM: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed; got {dropout!r}")
        if not isinstance(bidirectional, bool):
            raise TypeError(f"TreeLSTM: bidirectional must be a bool; got {bidirectional!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last tree-LSTM layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.arity = arity
        self.bias = bias
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.backend = backend  # validated by the property setter
        self.projection_cache = engine.ProjectionCache()

        factory = {"device": device, "dtype": dtype}
        # cell="nary" has a positive arity (checked above)
        num_slots = 1 if cell == "childsum" else cast(int, arity)
        hh_rows = 4 * hidden_size if cell == "childsum" else (cast(int, arity) + 3) * hidden_size
        for k in range(num_layers):
            layer_input = input_size if k == 0 else self.num_directions * hidden_size
            self._add_parameters(f"l{k}", (4 * hidden_size, layer_input),
                                 (hh_rows, num_slots * hidden_size), factory)
            if bidirectional:  # the top-down LSTM step: input h_up, state the parent's
                self._add_parameters(f"l{k}_reverse", (4 * hidden_size, hidden_size),
                                     (4 * hidden_size, hidden_size), factory)
        self.reset_parameters()

    def _add_parameters(self, suffix: str, ih_shape: tuple[int, int], hh_shape: tuple[int, int],
                        factory: dict) -> None:
        for name, shape in (("weight_ih", ih_shape), ("weight_hh", hh_shape)):
            self.register_parameter(f"{name}_{suffix}",
                                    nn.Parameter(torch.empty(shape, **factory)))
        for name, rows in (("bias_ih", ih_shape[0]), ("bias_hh", hh_shape[0])):
            self.register_parameter(f"{name}_{suffix}", nn.Parameter(
                torch.empty(rows, **factory)) if self.bias else None)

    def cache_projections(self, enabled: bool = True) -> "TreeLSTM":
        """Keep, between calls without autograd, the first layer's projection of the input
        table given with ``input_rows`` (and, N-ary, each word's leaf state and its terms in the
        parent's pre-activations), so that a vocabulary word is projected once, not once per
        batch: for inference with fixed weights (a :class:`~treelstm.predict.Predictor` turns it
        on). Weight updates through autograd-tracked in-place ops or new storage are noticed;
        in-place writes through ``.data`` and fused optimizers are not -- call
        ``projection_cache.clear()`` after them, or leave this off while training. Tables whose
        kept terms exceed ``projection_cache.max_bytes`` (256 MiB) are not kept. Returns
        ``self``."""
        if not isinstance(enabled, bool):
            raise TypeError(f"TreeLSTM.cache_projections: enabled must be a bool; got {enabled!r}")
        self.projection_cache.enabled = enabled
        if not enabled:
            self.projection_cache.clear()
        return self

    @property
    def num_directions(self) -> int:
        """The number `D` of directions, 2 if ``bidirectional``, otherwise 1 (as in ``nn.LSTM``'s
        shapes)."""
        return 2 if self.bidirectional else 1

    @property
    def backend(self) -> str:
        """The executor, ``"native"`` or ``"dgl"``; may be set between calls (same parameters,
        same results). Setting anything else is a ValueError."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(f"TreeLSTM: backend must be one of {BACKENDS}; got {value!r}")
        self._backend = value

    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, as ``nn.LSTM``."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def layer_parameters(self, k: int, reverse: bool = False
                         ) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of layer ``k`` (its top-down pass's with
        ``reverse=True``)."""
        return tuple(getattr(self, name) for name in _parameter_names(k, reverse))

    def forward(self, input: Tensor, batch: Union[TreeBatch, Any],
                input_index: Optional[Union[Tensor, Sequence[int]]] = None,
                input_rows: Optional[Union[Tensor, Sequence[int]]] = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the layers over ``batch``, children before parents.

        Args:
            input: `(N_nodes, H_in)`, or `(N_in, H_in)` with ``input_index`` (a table with
                ``input_rows``); see the class docstring.
            batch: a :class:`TreeBatch` (or a DGL graph, edges child -> parent).
            input_index: `(N_in)` the nodes that get input; the others get none.
            input_rows: `(N_in)` the row of ``input`` each of those nodes reads.

        Returns:
            ``output`` `(N_nodes, D * H_out)` and ``(h_n, c_n)``, each
            `(D * num_layers, N_trees, H_out)`.

        Raises:
            ValueError, TypeError: input of the wrong shape, dtype or device, an index out of
                range, or trees an N-ary cell cannot take.
        """
        return self._layers(input, batch, input_index, input_rows, output=True)

    def final_states(self, input: Tensor, batch: Union[TreeBatch, Any],
                     input_index: Optional[Union[Tensor, Sequence[int]]] = None,
                     input_rows: Optional[Union[Tensor, Sequence[int]]] = None
                     ) -> tuple[Tensor, Tensor]:
        """``(h_n, c_n)`` alone: what :meth:`forward` returns second, the roots' states, without
        the per-node ``output`` (at inference, the native engine then skips putting every node's
        state in node order). Same arguments and checks as :meth:`forward`.

        Returns:
            ``h_n, c_n``, each `(D * num_layers, N_trees, H_out)`.
        """
        return self._layers(input, batch, input_index, input_rows, output=False)[1]

    @overload
    def _layers(self, input: Tensor, batch: Union[TreeBatch, Any],
                input_index: Optional[Union[Tensor, Sequence[int]]],
                input_rows: Optional[Union[Tensor, Sequence[int]]], output: Literal[True]
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...

    @overload
    def _layers(self, input: Tensor, batch: Union[TreeBatch, Any],
                input_index: Optional[Union[Tensor, Sequence[int]]],
                input_rows: Optional[Union[Tensor, Sequence[int]]], output: Literal[False]
                ) -> tuple[None, tuple[Tensor, Tensor]]: ...

    def _layers(self, input: Tensor, batch: Union[TreeBatch, Any],
                input_index: Optional[Union[Tensor, Sequence[int]]],
                input_rows: Optional[Union[Tensor, Sequence[int]]], output: bool
                ) -> tuple[Optional[Tensor], tuple[Tensor, Tensor]]:
        batch = self._as_batch(batch, input)
        input_index, input_rows = self._check_input(input, batch, input_index, input_rows)
        if self.cell == "nary":
            batch.check_arity(cast(int, self.arity))
        graph = batch.dgl_graph() if self.backend == "dgl" else None

        layer_input, h_roots, c_roots = input, [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            index, rows = (input_index, input_rows) if k == 0 else (None, None)
            # the last layer's nodes are not needed when only the roots' states are asked for
            roots_only = not output and k == self.num_layers - 1 and not self.bidirectional
            h, c = self._bottom_up(batch, graph, layer_input, k, index, rows, roots_only)
            h_roots.append(h if roots_only else h[batch.roots])
            c_roots.append(c)
            if self.bidirectional:
                h_down, c_down = self._top_down(batch, graph, h, k)
                # under autocast the top-down pass's ops may leave float32: the bottom-up dtype
                h_down, c_down = h_down.to(h.dtype), c_down.to(h.dtype)
                h_roots.append(h_down[batch.roots])
                c_roots.append(c_down[batch.roots])
                h = torch.cat([h, h_down], 1)
            layer_input = h
        return (layer_input if output else None), (torch.stack(h_roots), torch.stack(c_roots))

    def _bottom_up(self, batch: TreeBatch, graph: Any, input: Tensor, k: int,
                   index: Optional[Tensor], rows: Optional[Tensor], roots_only: bool
                   ) -> tuple[Tensor, Tensor]:
        """Layer ``k``'s bottom-up pass: every node's ``h`` (only the roots' with
        ``roots_only``) and the roots' ``c`` (all a model reads of ``c``)."""
        weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(k)
        if graph is None:  # W_ih x only for the rows given, i | g | o only at leaves
            return engine.layer(batch, input, weight_ih, weight_hh, bias_ih, bias_hh, self.cell,
                                self.arity, index, rows, self.projection_cache, roots_only,
                                cell_roots_only=True)
        from . import dgl as dgl_backend

        if rows is not None:
            input = input.index_select(0, rows)
        x_gates = functional.input_gates(input, weight_ih, bias_ih)
        if index is not None:
            no_input = functional.constant_input_gates(batch.num_nodes, weight_ih, bias_ih)
            x_gates = no_input.to(x_gates.dtype).index_copy(0, index, x_gates)
        h, c = dgl_backend.run_layer(graph, x_gates, weight_hh, bias_hh, self.cell, self.arity)
        return (h[batch.roots] if roots_only else h), c[batch.roots]

    def _top_down(self, batch: TreeBatch, graph: Any, h_up: Tensor, k: int
                  ) -> tuple[Tensor, Tensor]:
        weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(k, reverse=True)
        if graph is None:
            return engine.top_down_layer(batch, h_up, weight_ih, weight_hh, bias_ih, bias_hh)
        from . import dgl as dgl_backend

        return dgl_backend.run_top_down(graph, functional.input_gates(h_up, weight_ih, bias_ih),
                                        weight_hh, bias_hh)

    def _as_batch(self, batch: Any, input: Tensor) -> TreeBatch:
        if _is_dgl_graph(batch):
            batch = TreeBatch.from_dgl(batch)
        elif not isinstance(batch, TreeBatch):
            raise TypeError(f"TreeLSTM: expected batch to be a TreeBatch or a DGL graph; got "
                            f"{type(batch).__name__} (build one with TreeBatch.from_parents or "
                            "TreeBatch.from_networkx)")
        if not isinstance(input, Tensor):
            raise TypeError(f"TreeLSTM: expected input to be a Tensor; got {type(input).__name__}")
        return batch.to(input.device)

    def _check_input(self, input: Tensor, batch: TreeBatch,
                     input_index: Optional[Union[Tensor, Sequence[int]]],
                     input_rows: Optional[Union[Tensor, Sequence[int]]] = None
                     ) -> tuple[Optional[Tensor], Optional[Tensor]]:
        self._check_dtype(input)
        if input.dim() != 2:
            raise ValueError(f"TreeLSTM: Expected input to be 2D [num_nodes, input_size], got "
                             f"{input.dim()}D instead")
        if input.shape[1] != self.input_size:
            raise ValueError(f"TreeLSTM: Expected input with {self.input_size} features, got "
                             f"{input.shape[1]}")
        if input_index is None:
            if input_rows is not None:
                raise ValueError("TreeLSTM: input_rows needs input_index (the nodes that read "
                                 "those rows)")
            if input.shape[0] != batch.num_nodes:
                raise ValueError(f"TreeLSTM: Expected input with one row per node "
                                 f"({batch.num_nodes} rows), got {input.shape[0]} rows; pass "
                                 "input_index to give input to some nodes only")
            return None, None
        input_index = self._as_index(input_index, _NODE_IDS, batch.num_nodes)
        if input_rows is None:
            if input_index.dim() != 1 or input_index.shape[0] != input.shape[0]:
                raise ValueError(f"TreeLSTM: Expected input_index of shape [{input.shape[0]}] "
                                 f"(one node id per input row), got {list(input_index.shape)}")
        else:
            input_rows = self._as_index(input_rows, _ROW_NUMBERS, input.shape[0])
            if input_index.dim() != 1 or input_rows.shape != input_index.shape:
                raise ValueError(f"TreeLSTM: Expected input_index and input_rows of one shape "
                                 f"[N_in], got {list(input_index.shape)} and "
                                 f"{list(input_rows.shape)}")
            input_rows = self._in_range(input_rows, _ROW_NUMBERS, input.shape[0], input.device)
        input_index = self._in_range(input_index, _NODE_IDS, batch.num_nodes, input.device)
        if input_index.numel() > 1 and not bool((input_index[1:] > input_index[:-1]).all()):
            # (increasing, as collate gives them: distinct without a sort)
            if torch.unique(input_index).numel() != input_index.numel():
                raise ValueError("TreeLSTM: input_index holds a node more than once; expected "
                                 "each node at most once")
        return input_index, input_rows

    def _check_dtype(self, input: Tensor) -> None:
        check_input_tensor("TreeLSTM", "input", input, cast(Tensor, self.weight_ih_l0))

    @staticmethod
    def _in_range(values: Tensor, kind: _IndexKind, size: int, device: torch.device) -> Tensor:
        """``values`` as a long tensor on ``device``, or a ValueError naming one outside
        ``[0, size)``."""
        as_long = values.to(device=device, dtype=torch.long)
        if as_long.numel():
            low, high = torch.stack(torch.aminmax(as_long)).tolist()  # one read back
            if low < 0 and values.dtype == torch.uint64:  # >= 2**63: wrapped around in int64
                raise kind.out_of_range(int(as_long[as_long < 0][0]) + 2 ** 64, size)
            if low < 0 or high >= size:
                raise kind.out_of_range(low if low < 0 else high, size)
        return as_long

    @staticmethod
    def _as_index(values: Union[Tensor, Sequence[int]], kind: _IndexKind, size: int) -> Tensor:
        """``values`` as a tensor of any integer dtype (an empty list is an empty index);
        TypeError for anything else, ValueError for a Python int beyond int64."""
        if isinstance(values, Tensor):
            if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
                if values.is_floating_point() and values.dim() == 3:  # [layers, trees, H]?
                    raise kind.not_a_state(f"a {values.dtype} tensor of shape "
                                           f"{list(values.shape)}")
                raise TypeError(f"TreeLSTM: {kind.name} must hold integer {kind.what}; got dtype "
                                f"{values.dtype}")
            return values
        if isinstance(values, range):
            values = list(values)
        if isinstance(values, (tuple, list)):
            if any(isinstance(v, Tensor) and v.dim() > 0 for v in values):
                raise kind.not_a_state(f"a {type(values).__name__} of {len(values)} tensors")
            if not values:  # torch.as_tensor([]) would be float32
                return torch.empty(0, dtype=torch.long)
            bad = next((v for v in values if type(v) in (bool, np.bool_)), None)
            if bad is not None:  # torch.as_tensor([1, True]) reads True as 1
                raise TypeError(f"TreeLSTM: {kind.name} must hold integer {kind.what}; got "
                                f"{bad!r} (bool)")
        elif isinstance(values, np.ndarray) and values.shape == (0,):  # np.array([]) is float64
            return torch.empty(0, dtype=torch.long)
        try:
            values = torch.as_tensor(values)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            if isinstance(values, (tuple, list)) and all(isinstance(v, int) for v in values):
                raise kind.out_of_range(next(v for v in values if not -2 ** 63 <= v < 2 ** 63),
                                        size) from None
            got = (f"an array of dtype {values.dtype}" if isinstance(values, np.ndarray)
                   else f"{type(values).__name__} ({error})")
            raise TypeError(f"TreeLSTM: {kind.name} must be a 1-D tensor or list of integer "
                            f"{kind.what}; got {got}") from None
        return TreeLSTM._as_index(values, kind, size)

    def extra_repr(self) -> str:
        """The constructor arguments in ``repr(model)``: the sizes, ``cell``, and the others that
        are not their defaults."""
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        text += f", cell={self.cell!r}"
        if self.arity is not None:
            text += f", arity={self.arity}"
        if not self.bias:
            text += ", bias=False"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.backend != "native":
            text += f", backend={self.backend!r}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


_CLASSIFIER_NAMES = ("ClassifierOutput", "TreeClassifierOutput", "TreeLSTMClassifier")


def __getattr__(name: str) -> Any:
    # The classifiers live in treelstm.classifier, which imports TreeLSTM from here: looked up
    # on first use, so that either module may be imported first.
    if name in _CLASSIFIER_NAMES:
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
