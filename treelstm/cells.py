"""Tree-LSTM cells as ``nn.Module``s, called like ``torch.nn.LSTMCell``."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from . import functional
from .checks import check_input_tensor, check_positive_ints, is_int


class _TreeLSTMCellBase(nn.Module):
    """Parameters, init and input checks shared by both cells."""

    def __init__(self, input_size: int, hidden_size: int, hh_shape: tuple[int, int], bias: bool,
                 device=None, dtype=None) -> None:
        super().__init__()
        check_positive_ints(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(*hh_shape, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(hh_shape[0], **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, as ``nn.LSTMCell``."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def _check(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]],
               num_children: Optional[int]) -> tuple[Tensor, Optional[Tensor], Optional[Tensor], bool]:
        name = type(self).__name__
        check_input_tensor(name, "input", input, self.weight_ih)
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: Expected input with {self.input_size} features (last "
                             f"dimension), got {input.shape[-1]}")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            return input, None, None, batched
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{name}: Expected hx to be a tuple (child_h, child_c), got "
                            f"{type(hx).__name__}")
        child_h, child_c = hx
        for label, state in (("child_h", child_h), ("child_c", child_c)):
            check_input_tensor(name, label, state, self.weight_ih)
        expected_dim = 3 if batched else 2
        for label, state in (("child_h", child_h), ("child_c", child_c)):
            if state.dim() != expected_dim:
                raise ValueError(f"{name}: Expected {label} to be {expected_dim}D "
                                 f"([{'n, ' if batched else ''}K, hidden_size]) for "
                                 f"{input.dim() if batched else 1}D input, got {state.dim()}D "
                                 "instead")
        if not batched:
            child_h, child_c = child_h.unsqueeze(0), child_c.unsqueeze(0)
        if child_h.shape != child_c.shape:
            raise ValueError(f"{name}: child_h and child_c must have the same shape; got "
                             f"{tuple(child_h.shape)} and {tuple(child_c.shape)}")
        n, k, h = child_h.shape
        if n != input.shape[0] or h != self.hidden_size:
            raise ValueError(f"{name}: Expected child states of shape [{input.shape[0]}, K, "
                             f"{self.hidden_size}], got {list(child_h.shape)}")
        if num_children is not None and k != num_children:
            raise ValueError(f"{name}: Expected {num_children} child slots (arity), got {k}")
        return input, child_h, child_c, batched

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if getattr(self, "arity", None) is not None:
            text += f", arity={self.arity}"
        if not self.bias:
            text += ", bias=False"
        return text


class ChildSumTreeLSTMCell(_TreeLSTMCellBase):
    r"""A Child-Sum Tree-LSTM cell (Tai, Socher & Manning 2015, section 3.1).

    For a node with input :math:`x` and children :math:`k` with states :math:`(h_k, c_k)`:

    .. math::
        \begin{array}{ll}
        \tilde h = \sum_k h_k \\
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} \tilde h + b_{hi}) \\
        f_k = \sigma(W_{if} x + b_{if} + W_{hf} h_k + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} \tilde h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} \tilde h + b_{ho}) \\
        c = i \odot g + \sum_k f_k \odot c_k \\
        h = o \odot \tanh(c)
        \end{array}

    With one child this is exactly one ``nn.LSTMCell`` step; zero child rows are neutral, so
    nodes with fewer children can be padded.

    Args:
        input_size: The number of expected features in the input `x`
        hidden_size: The number of features in the hidden state `h`
        bias: If ``False``, the layer does not use bias weights `b_ih` and `b_hh`. Default: ``True``

    Inputs: input, (child_h, child_c)
        - **input** of shape `(n, H_in)` or `(H_in)`: node inputs.
        - **child_h**, **child_c** of shape `(n, K, H_out)` or `(K, H_out)`: the children's states,
          any number `K` of children. If omitted, the nodes are leaves (no children).

    Outputs: (h, c)
        - **h**, **c** of shape `(n, H_out)` or `(H_out)`.

    Attributes:
        weight_ih: the learnable input-hidden weights, of shape `(4*hidden_size, input_size)`,
            gate order ``i|f|g|o``
        weight_hh: the learnable hidden-hidden weights, of shape `(4*hidden_size, hidden_size)`
        bias_ih: the learnable input-hidden bias, of shape `(4*hidden_size)`
        bias_hh: the learnable hidden-hidden bias, of shape `(4*hidden_size)`

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with
    :math:`k = 1/\text{hidden\_size}`.

    Examples::

        >>> cell = ChildSumTreeLSTMCell(10, 20)
        >>> leaves_h, leaves_c = cell(torch.randn(3, 10))
        >>> h, c = cell(torch.randn(1, 10), (leaves_h.unsqueeze(0), leaves_c.unsqueeze(0)))
        >>> h.shape
        torch.Size([1, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, (4 * hidden_size, hidden_size), bias,
                         device, dtype)

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None
                ) -> tuple[Tensor, Tensor]:
        """One Child-Sum step for ``n`` nodes (or one node, unbatched) given their children.

        Args:
            input: `(n, H_in)` or `(H_in)`, the nodes' inputs.
            hx: ``(child_h, child_c)``, each `(n, K, H_out)` or `(K, H_out)`: the states of
                each node's `K` children (any `K`, including 0; zero rows pad nodes with fewer
                children). Default: ``None``, the nodes are leaves.

        Returns:
            ``(h, c)``, the nodes' states, each `(n, H_out)` or `(H_out)`.

        Raises:
            ValueError, TypeError: ``input`` not 1D or 2D or without ``input_size`` features,
                ``hx`` not a pair, or child states of the wrong shape, dtype or device.
        """
        input, child_h, child_c, batched = self._check(input, hx, None)
        x_gates = functional.input_gates(input, self.weight_ih, self.bias_ih)
        h, c = functional.childsum_cell(x_gates, child_h, child_c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class NaryTreeLSTMCell(_TreeLSTMCellBase):
    r"""An N-ary Tree-LSTM cell (Tai, Socher & Manning 2015, section 3.2).

    For a node with input :math:`x` and child slots :math:`\ell = 1..N` with states
    :math:`(h_\ell, c_\ell)` (zeros for an empty slot):

    .. math::
        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + \sum_\ell U^{(i)}_{\ell} h_\ell + b_{hi}) \\
        f_k = \sigma(W_{if} x + b_{if} + \sum_\ell U^{(f_k)}_{\ell} h_\ell + b_{hf_k})
            \quad k = 1..N \\
        g = \tanh(W_{ig} x + b_{ig} + \sum_\ell U^{(g)}_{\ell} h_\ell + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + \sum_\ell U^{(o)}_{\ell} h_\ell + b_{ho}) \\
        c = i \odot g + \sum_k f_k \odot c_k \\
        h = o \odot \tanh(c)
        \end{array}

    The input weights ``W_f`` are shared by all forget gates; each (gate, slot) pair has its own
    ``U``. With ``arity=1`` this is exactly one ``nn.LSTMCell`` step.

    Args:
        input_size: The number of expected features in the input `x`
        hidden_size: The number of features in the hidden state `h`
        arity: The number `N` of child slots
        bias: If ``False``, the layer does not use bias weights `b_ih` and `b_hh`. Default: ``True``

    Inputs: input, (child_h, child_c)
        - **input** of shape `(n, H_in)` or `(H_in)`.
        - **child_h**, **child_c** of shape `(n, N, H_out)` or `(N, H_out)`, in slot order, zeros
          for empty slots. If omitted, the nodes are leaves.

    Outputs: (h, c)
        - **h**, **c** of shape `(n, H_out)` or `(H_out)`.

    Attributes:
        weight_ih: `(4*hidden_size, input_size)`, row blocks ``i|f|g|o``
        weight_hh: `((N+3)*hidden_size, N*hidden_size)`, row blocks ``i | f_1..f_N | g | o``,
            column blocks child slot ``1..N``
        bias_ih: `(4*hidden_size)`
        bias_hh: `((N+3)*hidden_size)`

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with
    :math:`k = 1/\text{hidden\_size}`.

    Examples::

        >>> cell = NaryTreeLSTMCell(10, 20, arity=2)
        >>> left, right = cell(torch.randn(10)), cell(torch.randn(10))
        >>> h, c = cell(torch.randn(10), (torch.stack([left[0], right[0]]),
        ...                               torch.stack([left[1], right[1]])))
        >>> h.shape
        torch.Size([20])
    """

    def __init__(self, input_size: int, hidden_size: int, arity: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        if not is_int(arity) or arity <= 0:
            raise ValueError(f"NaryTreeLSTMCell: arity must be a positive integer; got {arity!r}")
        self.arity = arity
        super().__init__(input_size, hidden_size,
                         ((arity + 3) * hidden_size, arity * hidden_size), bias, device, dtype)

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None
                ) -> tuple[Tensor, Tensor]:
        """One N-ary step for ``n`` nodes (or one node, unbatched) given their child slots.

        Args:
            input: `(n, H_in)` or `(H_in)`, the nodes' inputs.
            hx: ``(child_h, child_c)``, each `(n, N, H_out)` or `(N, H_out)` with `N` =
                ``arity``: the children's states in slot order, zeros for empty slots.
                Default: ``None``, the nodes are leaves.

        Returns:
            ``(h, c)``, the nodes' states, each `(n, H_out)` or `(H_out)`.

        Raises:
            ValueError, TypeError: ``input`` not 1D or 2D or without ``input_size`` features,
                ``hx`` not a pair, or child states of the wrong shape (other than ``arity``
                slots), dtype or device.
        """
        input, child_h, child_c, batched = self._check(input, hx, self.arity)
        x_gates = functional.input_gates(input, self.weight_ih, self.bias_ih)
        h, c = functional.nary_cell(x_gates, child_h, child_c, self.weight_hh, self.bias_hh,
                                    self.arity)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
