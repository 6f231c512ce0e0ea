"""Fused level steps in C for the native engine on the CPU (float32), with the pure-torch ops as
the fallback and the reference.

A level of the engine's loop is a matrix product and a dozen small elementwise ops; in a single
tree or a small batch most of their time is per-op overhead, and in a large one each op is
another pass over the level's rows. ``kernels.c`` does a level's node update (the gate
nonlinearities, the children's forget terms read by row index, the new state) in one pass per
row, the backward's per-level steps likewise, and the row gathers by ``memcpy``. Where torch
exports its BLAS ``sgemm`` (:func:`sgemm_address`), a whole layer's levels run in one C call
that also does the products through it; elsewhere the products stay torch's, one per level.

The C file is compiled once per machine, on first use, with the C compiler found as ``$CC`` or
``cc``/``gcc`` (0.3-0.6 s), into :func:`cache_dir` (written to a temporary file and renamed, so
that concurrent processes do not collide; each build carries its key, checked before a cached
file is loaded), and loaded with :mod:`ctypes`. Without a compiler, or when compiling fails,
the engine runs its pure-torch ops: same results up to float32 rounding (the C ``exp`` is
Cephes' polynomial, about 1 ulp).

``TREELSTM_KERNELS=0`` in the environment turns the C steps off; ``TREELSTM_KERNELS=1`` makes
their absence an error (what CI uses, so that the tests run them); unset: used when available.
:func:`status` says which, and why.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("kernels.c")
ENVIRONMENT = "TREELSTM_KERNELS"
#: -fno-trapping-math lets gcc vectorise the float -> int conversion in exp (results unchanged)
FLAGS = ("-O3", "-fno-trapping-math", "-fPIC", "-shared")
#: torch runs an elementwise op on one thread below this many elements (at::internal::GRAIN_SIZE);
#: with more torch threads, larger levels stay with torch's (parallel) ops
GRAIN_SIZE = 32768

_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_reason = "not loaded yet"
_loaded = False
_forced = threading.local()  # use(): tests compare both paths, per thread


def cache_dir() -> Path:
    """Where the compiled library is kept: ``$TREELSTM_CACHE``, else
    ``$XDG_CACHE_HOME/treelstm`` or ``~/.cache/treelstm``."""
    explicit = os.environ.get("TREELSTM_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "treelstm"


def _cpu_flags() -> str:
    """What the machine's instruction set is (the library is built for it: -march=native)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.machine() + platform.processor()


def _compiler() -> Optional[str]:
    """``$CC`` (a command line: "ccache gcc" is two words), else ``cc`` or ``gcc`` on the path."""
    return os.environ.get("CC", "").strip() or shutil.which("cc") or shutil.which("gcc")


#: a temporary file of a build older than this (seconds) was left by a killed process
STALE_BUILD = 600
#: a compiler that takes longer is given up (the torch ops run)
COMPILE_SECONDS = 60


def _build(target: Path, compiler: str, key: str) -> None:
    """Compile ``SOURCE`` into ``target`` (a temporary file renamed into place); raises
    ``OSError`` with the compiler's message when it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob("kernels-*.tmp"):  # builds killed before their rename
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_BUILD:
                stale.unlink()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.stem, suffix=".tmp")
    os.close(handle)
    try:
        message = ""
        for extra in (("-march=native",), ()):  # a compiler without -march=native: generic
            try:
                result = subprocess.run(
                    [*shlex.split(compiler), *FLAGS, *extra, f"-DTL_BUILD_KEY=\"{key}\"",
                     "-o", temporary, str(SOURCE)],
                    capture_output=True, text=True, timeout=COMPILE_SECONDS)
            except subprocess.TimeoutExpired:
                raise OSError(f"{compiler} took more than {COMPILE_SECONDS} s") from None
            if result.returncode == 0 and os.path.getsize(temporary) and \
                    _whole(Path(temporary)):
                os.chmod(temporary, 0o755)  # readable by all, as a compiler leaves a library
                os.replace(temporary, target)
                return
            message = f"exit status {result.returncode}" + \
                (f": {result.stderr.strip()[-500:]}" if result.stderr.strip() else "") + \
                ("" if result.returncode else " (and no library written)")
        raise OSError(f"{compiler} failed: {message}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _whole(library: Path) -> bool:
    """Whether ``library`` is not cut short: a truncated ELF file can load and then crash the
    process (SIGBUS) when a missing page is touched; its section headers, at the end, tell its
    size. (Other formats are not checked.)"""
    with open(library, "rb") as file:
        header = file.read(64)
    if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
        return header[:4] != b"\x7fELF"

    def number(start: int, stop: int) -> int:
        return int.from_bytes(header[start:stop], "little" if header[5] == 1 else "big")

    end = number(40, 48) + number(58, 60) * number(60, 62)  # e_shoff + e_shentsize * e_shnum
    return library.stat().st_size >= end


def _marker(key: str) -> bytes:
    """The string a build of this source holds (``tl_build_key`` in kernels.c, set by -D)."""
    return f"treelstm-kernels-{key}".encode()


def _load() -> tuple[Optional[ctypes.CDLL], str]:
    compiler = _compiler()
    try:
        source = SOURCE.read_bytes()
    except OSError as error:
        return None, f"cannot read {SOURCE}: {error.strerror or error}"
    key = hashlib.sha256(source + repr(FLAGS).encode() + _cpu_flags().encode() +
                         str(compiler).encode()).hexdigest()[:16]
    target = cache_dir() / f"kernels-{key}.so"
    built = False
    for attempt in range(2):  # a cached file that does not load is built again, once
        if attempt or not target.exists():
            built = True
            if compiler is None:
                return None, "no C compiler ($CC, cc or gcc) to build kernels.c"
            try:
                _build(target, compiler, key)
            except (OSError, subprocess.SubprocessError) as error:
                return None, f"could not build {target}: {error}"
        try:  # checked before it is loaded: a foreign library's code would run in the process
            if not _whole(target):
                raise OSError("the file is cut short")
            if _marker(key) not in target.read_bytes():
                raise OSError("not the kernels built from this kernels.c")
            library = ctypes.CDLL(str(target))
            _declare(library)
        except (OSError, AttributeError) as error:  # AttributeError: a symbol missing
            reason = f"could not load {target}: {error}"
            continue
        return library, f"{'built and loaded' if built else 'loaded'} {target}"
    return None, reason


def _declare(library: ctypes.CDLL) -> None:
    pointer, size, flag = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    signatures = {
        "tl_gather_rows": [pointer, size, pointer, size, pointer],
        "tl_sum_rows": [pointer, size, pointer, size, size, pointer],
        "tl_nary_update": [size, size, size, size, pointer, pointer, pointer, pointer, pointer,
                           flag],
        "tl_childsum_update": [size, size, size, size, size, pointer, size, pointer, pointer,
                               pointer, pointer, pointer, pointer],
        "tl_childsum_update_keep": [size, size, size, size, size, pointer, size, pointer,
                                    pointer, pointer, pointer, pointer, pointer],
        "tl_childsum_backward_level": [size, size, pointer, pointer, pointer, pointer, size,
                                       pointer, pointer, pointer, pointer, pointer],
        "tl_scatter_add_rows": [pointer, size, size, pointer, size, pointer],
        "tl_nary_levels": [pointer, size, size, pointer, pointer, size, size, size, pointer, flag,
                           pointer, pointer, pointer, pointer, pointer],
        "tl_nary_backward": [pointer, size, pointer, pointer, size, size, size, size, pointer,
                             pointer, pointer, pointer, pointer, pointer, pointer, size, pointer,
                             pointer],
        "tl_nary_grads": [size, size, size, size, pointer, pointer, pointer, pointer, pointer,
                          pointer, pointer, pointer, pointer],
        "tl_childsum_inference": [pointer, size, pointer, pointer, pointer, pointer, size,
                                  pointer, pointer, pointer, pointer, pointer, pointer, size],
        "tl_childsum_forward": [pointer, size, pointer, pointer, pointer, pointer, size, pointer,
                                pointer, pointer, pointer, pointer, pointer, pointer, pointer,
                                pointer],
        "tl_childsum_backward": [pointer, size, pointer, pointer, pointer, pointer, size,
                                 pointer, pointer, pointer, pointer, pointer, pointer, pointer,
                                 pointer, size],
        "tl_nary_backward_level": [size, size, size, size, pointer, pointer, pointer, pointer,
                                   pointer, pointer, pointer],
        "tl_nary_biases": [pointer, pointer, size, size, pointer, size, pointer, size],
        "tl_project_rows": [pointer, size, size, pointer, pointer, size, pointer, pointer, size],
        "tl_leaf_word_states": [size, size, size, pointer, pointer, size, pointer, pointer,
                                pointer, pointer],
        "tl_nary_inference": [pointer, size, pointer, pointer, size, size, size, pointer, flag,
                              pointer, pointer, size, size, pointer, pointer, size, pointer,
                              pointer, pointer, pointer],
    }
    for name, argtypes in signatures.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, None


class Unavailable(RuntimeError):
    """``TREELSTM_KERNELS=1`` and the C kernels could not be built or loaded."""


def _setting() -> str:
    """``TREELSTM_KERNELS``: ``""`` (unset: when available), ``"0"`` or ``"1"``; anything else is
    a ``ValueError``."""
    setting = os.environ.get(ENVIRONMENT, "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(f"{ENVIRONMENT} must be 0 (the pure-torch ops), 1 (the C kernels, or an "
                         f"error) or unset (the C kernels when available); got {setting!r}")
    return setting


def library() -> Optional[ctypes.CDLL]:
    """The compiled kernels, or ``None`` (turned off, or unavailable: see :func:`status`).
    Raises :class:`Unavailable` when ``TREELSTM_KERNELS=1`` and they are unavailable,
    ``ValueError`` when ``TREELSTM_KERNELS`` is neither 0, 1 nor unset."""
    global _library, _reason, _loaded
    setting = _setting()
    if setting == "0":
        return None
    if not _loaded:
        with _lock:
            if not _loaded:
                _library, _reason = _load()
                _loaded = True
    if _library is None and setting == "1":
        raise Unavailable(f"{ENVIRONMENT}=1 but the C kernels are unavailable: {_reason}")
    return _library


_sgemm: Optional[int] = None
_sgemm_looked = False


def sgemm_address() -> Optional[int]:
    """The address of the BLAS ``sgemm`` (Fortran interface) torch itself links -- MKL, exported
    by ``libtorch_cpu`` in torch's x86 wheels -- or ``None`` where torch does not export one
    (then the levels' products are torch's ``addmm``, one call per level from Python)."""
    global _sgemm, _sgemm_looked
    if not _sgemm_looked:  # (the flag after the value: a racing first call looks up too)
        path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
        with contextlib.suppress(OSError, AttributeError):
            _sgemm = ctypes.cast(getattr(ctypes.CDLL(str(path)), "SGEMM"), ctypes.c_void_p).value
        _sgemm_looked = True
    return _sgemm


_omatcopy: Optional[Callable[..., None]] = None
_omatcopy_looked = False


def _somatcopy() -> Optional[Callable[..., None]]:
    """MKL's ``MKL_Somatcopy`` (a scaled, transposing matrix copy), exported by ``libtorch_cpu``
    beside its ``SGEMM``, or ``None``."""
    global _omatcopy, _omatcopy_looked
    if not _omatcopy_looked:  # (as sgemm_address)
        path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
        with contextlib.suppress(OSError, AttributeError):
            function = getattr(ctypes.CDLL(str(path)), "MKL_Somatcopy")
            size = ctypes.c_size_t
            function.argtypes = [ctypes.c_char, ctypes.c_char, size, size, ctypes.c_float,
                                 ctypes.c_void_p, size, ctypes.c_void_p, size]
            function.restype = None
            _omatcopy = function
        _omatcopy_looked = True
    return _omatcopy


def transposed(weight: Tensor, blocks: tuple[tuple[int, int], ...], width: int
               ) -> Optional[Tensor]:
    """``torch.cat([weight[a:b] for a, b in blocks]).t()`` with zero columns up to ``width``,
    contiguous (``[C, width]`` for ``weight`` ``[R, C]``), made by MKL's transposing copy --
    as fast as a plain copy, where torch's transposing copy takes 2-4x as long -- or ``None``
    (not a contiguous float32 CPU tensor, or no such copy exported: see :func:`sgemm_address`).
    No autograd: for the engine's own forward.

    A product ``rows @ weight.t()`` with few rows runs up to twice as fast from this contiguous
    ``weight^T`` as from the transposed view (MKL's small-matrix path handles the transposed
    operand poorly), which pays for the copy from a few levels on."""
    copy = _somatcopy()
    if copy is None or weight.device.type != "cpu" or weight.dtype != torch.float32 or \
            not weight.is_contiguous():
        return None
    rows, columns = weight.shape
    out = weight.new_empty(columns, width)
    start = 0
    for first, stop in blocks:
        copy(b"R", b"T", stop - first, columns, 1.0, weight.data_ptr() + first * columns * 4,
             columns, out.data_ptr() + start * 4, width)
        start += stop - first
    if width > start:
        out[:, start:] = 0
    return out


def status() -> str:
    """Whether the C steps are used, and why: what ``python -m treelstm bench`` records, and
    what a bug report should say. Never raises."""
    try:
        setting = _setting()
    except ValueError as error:
        return f"off: {error}"
    if setting == "0":
        return f"off ({ENVIRONMENT}=0)"
    if getattr(_forced, "enabled", None) is False:
        return "off (within kernels.use(False))"
    try:
        library()
    except Unavailable as error:
        return f"off: {error}"
    if _library is None:
        return f"off, {_reason}"
    how = ("whole layers in one call through torch's sgemm" if sgemm_address() is not None else
           "level by level (torch exports no sgemm)")
    return f"on ({how}), {_reason}"


@contextlib.contextmanager
def use(enabled: bool) -> Iterator[None]:
    """Within the block, in this thread, use the C steps (when available) or not: tests compare
    both paths."""
    previous = getattr(_forced, "enabled", None)
    _forced.enabled = enabled
    try:
        yield
    finally:
        _forced.enabled = previous


def for_call(like: Tensor) -> Optional[ctypes.CDLL]:
    """The kernels for one layer call whose states are like ``like`` (float32 on the CPU, no
    autograd through them), or ``None``: the pure-torch ops then."""
    if like.device.type != "cpu" or like.dtype != torch.float32 or \
            getattr(_forced, "enabled", None) is False:
        return None
    return library()


def fits(rows: int, width: int) -> bool:
    """Whether a level of ``rows x width`` elements goes to C: always with one torch thread;
    with more, only what torch too would run on one thread (see :data:`GRAIN_SIZE`)."""
    return rows * width < GRAIN_SIZE or torch.get_num_threads() == 1


def gather_rows(lib: ctypes.CDLL, source: Tensor, index: Tensor) -> Tensor:
    """``source.index_select(0, index)`` for a contiguous ``[R, X]`` source and int64 index."""
    out = source.new_empty(index.shape[0], source.shape[1])
    lib.tl_gather_rows(source.data_ptr(), source.shape[1], index.data_ptr(), index.shape[0],
                       out.data_ptr())
    return out


def sum_rows(lib: ctypes.CDLL, source: Tensor, parent: Tensor, num_rows: int,
             out: Optional[Tensor] = None) -> Tensor:
    """``zeros(num_rows, X).index_add_(0, parent, source)`` (into a contiguous ``out``)."""
    out = source.new_empty(num_rows, source.shape[1]) if out is None else out
    lib.tl_sum_rows(source.data_ptr(), source.shape[1], parent.data_ptr(), parent.shape[0],
                    num_rows, out.data_ptr())
    return out


def nary_update(lib: ctypes.CDLL, preactivation: Tensor, c_rows: Optional[Tensor],
                children: Optional[Tensor], arity: int, hidden_size: int,
                out: tuple[Tensor, Tensor], keep_activations: bool = False) -> None:
    """:func:`treelstm.functional.nary_state_fused` with the children's ``c`` read from
    ``c_rows`` by ``children`` (``[n * arity]``, slot order) rather than gathered first;
    ``arity=0``: leaves (``c_rows``, ``children`` ``None``). The pre-activations are left as
    they were unless ``keep_activations`` (then they become the activations, as there; the
    padding columns are left alone)."""
    h_out, c_out = out
    lib.tl_nary_update(preactivation.shape[0], arity, hidden_size, preactivation.shape[1],
                       preactivation.data_ptr(), None if c_rows is None else c_rows.data_ptr(),
                       None if children is None else children.data_ptr(), h_out.data_ptr(),
                       c_out.data_ptr(), int(keep_activations))


def childsum_update(lib: ctypes.CDLL, gates: Tensor, cell_column: int, output_column: int,
                    forget: Tensor, c_rows: Tensor, children: Tensor, parent: Tensor,
                    out: tuple[Tensor, Tensor], keep_activations: bool = False) -> None:
    """The Child-Sum node update: ``gates`` ``[n, W]`` pre-activations with ``i`` at column 0,
    ``g`` at ``cell_column``, ``o`` at ``output_column``; ``forget`` ``[E, H]`` the edges'
    forget pre-activations; edge ``e`` joins row ``children[e]`` of ``c_rows`` to node
    ``parent[e]``. Writes ``c = i g + sum_k f_k c_k`` and ``h = o tanh(c)`` into ``out``; with
    ``keep_activations`` the gates' and forget pre-activations become their activations."""
    h_out, c_out = out
    function = lib.tl_childsum_update_keep if keep_activations else lib.tl_childsum_update
    function(gates.shape[0], h_out.shape[1], gates.shape[1], cell_column, output_column,
             gates.data_ptr(), forget.shape[0], forget.data_ptr(), c_rows.data_ptr(),
             children.data_ptr(), parent.data_ptr(), h_out.data_ptr(), c_out.data_ptr())


def scatter_add_rows(lib: ctypes.CDLL, target: Tensor, index: Tensor, source: Tensor) -> None:
    """``target.index_add_(0, index, source[:, :X])`` for contiguous ``[R, X]`` ``target`` and
    ``source`` rows ``[len(index), >= X]`` (a product's padded columns left out)."""
    lib.tl_scatter_add_rows(source.data_ptr(), source.stride(0), target.shape[1],
                            index.data_ptr(), index.shape[0], target.data_ptr())


def nary_backward_level(lib: ctypes.CDLL, grad_pre: Tensor, through: Tensor, grad_h: Tensor,
                        grad_c: Tensor, activations: Tensor, children: Tensor,
                        grad_c_rows: Tensor, arity: int) -> None:
    """:func:`treelstm.functional.preactivation_grads` for one N-ary level, and the children's
    ``c`` gradients (``grad_c_total * f_k`` added into ``grad_c_rows`` by ``children``)."""
    lib.tl_nary_backward_level(grad_pre.shape[0], arity, through.shape[1], grad_pre.shape[1],
                               grad_pre.data_ptr(), through.data_ptr(), grad_h.data_ptr(),
                               grad_c.data_ptr(), activations.data_ptr(), children.data_ptr(),
                               grad_c_rows.data_ptr())


def childsum_backward_level(lib: ctypes.CDLL, grad_gates: Tensor, through: Tensor,
                            grad_h: Tensor, grad_c: Tensor, grad_forget: Tensor, forget: Tensor,
                            children: Tensor, parent: Tensor, grad_c_rows: Tensor) -> None:
    """:func:`treelstm.functional.preactivation_grads` for one Child-Sum level
    (``grad_gates`` ``[n, 3H]``), its edges' forget gradients (``grad_forget`` ``[E, H]`` times
    the parent's ``grad_c_total``) and the children's ``c`` gradients (``grad_c_total * f``
    added into ``grad_c_rows`` by ``children``)."""
    lib.tl_childsum_backward_level(grad_gates.shape[0], through.shape[1], grad_gates.data_ptr(),
                                   through.data_ptr(), grad_h.data_ptr(), grad_c.data_ptr(),
                                   forget.shape[0], grad_forget.data_ptr(), forget.data_ptr(),
                                   children.data_ptr(), parent.data_ptr(),
                                   grad_c_rows.data_ptr())


def nary_biases(lib: ctypes.CDLL, bias_ih: Optional[Tensor], bias_hh: Optional[Tensor],
                arity: int, hidden_size: int, leaf_width: int, inner_width: int
                ) -> Optional[tuple[Tensor, Tensor]]:
    """The N-ary biases of inference without input above the leaves, in one call: the leaves'
    ``i | g | o`` (:func:`treelstm.functional.leaf_bias`) and the inner nodes'
    (:func:`treelstm.functional.nary_bias_without_input`), each with zero columns up to its
    width; ``None`` without biases, or for biases that are not contiguous float32 vectors."""
    present = [b for b in (bias_ih, bias_hh) if b is not None]
    if not present or any(b.dtype != torch.float32 or b.device.type != "cpu" or
                          not b.is_contiguous() for b in present):
        return None
    out = present[0].new_empty(leaf_width + inner_width)
    leaf, inner = out[:leaf_width], out[leaf_width:]
    lib.tl_nary_biases(None if bias_ih is None else bias_ih.data_ptr(),
                       None if bias_hh is None else bias_hh.data_ptr(), arity, hidden_size,
                       leaf.data_ptr(), leaf_width, inner.data_ptr(), inner_width)
    return leaf, inner


def project_rows(lib: ctypes.CDLL, rows: Tensor, weight: Tensor,
                 blocks: tuple[tuple[int, int], ...], width: int) -> Optional[Tensor]:
    """``torch.cat([rows @ weight[a:b].t() for a, b in blocks], 1)`` with zero columns up to
    ``width``, by torch's ``sgemm`` on the weight as it is (no copy of its rows); ``None`` where
    torch exports no ``sgemm``, or for operands that are not contiguous float32."""
    gemm = sgemm_address()
    if gemm is None or not (rows.is_contiguous() and weight.is_contiguous()) or \
            rows.dtype != torch.float32 or weight.dtype != torch.float32 or rows.shape[1] == 0:
        return None  # (no columns: sgemm refuses a leading dimension of 0)
    out = rows.new_empty(rows.shape[0], width)
    bounds = torch.tensor(blocks).flatten()
    lib.tl_project_rows(gemm, rows.shape[0], rows.shape[1], rows.data_ptr(), weight.data_ptr(),
                        len(blocks), bounds.data_ptr(), out.data_ptr(), width)
    return out


def leaf_word_states(lib: ctypes.CDLL, preactivation: Tensor, bias: Optional[Tensor],
                     gather: Tensor, hidden_size: int, h_leaves: Tensor, c_leaves: Tensor
                     ) -> None:
    """The leaves' states from the ``i | g | o`` pre-activations of their distinct words
    (``[D, W]``, without ``bias``: added in place): each word's once, then gathered into the
    contiguous ``h_leaves``, ``c_leaves`` by ``gather`` (each leaf's word)."""
    words = preactivation.new_empty(2, preactivation.shape[0], hidden_size)
    lib.tl_leaf_word_states(preactivation.shape[0], hidden_size, preactivation.shape[1],
                            preactivation.data_ptr(), None if bias is None else bias.data_ptr(),
                            gather.shape[0], gather.data_ptr(), h_leaves.data_ptr(),
                            c_leaves.data_ptr(), words.data_ptr())


def nary_levels(lib: ctypes.CDLL, first: int, bounds: tuple[int, ...], children: Tensor,
                arity: int, hidden_size: int, weight_t: Tensor, bias: Optional[Tensor],
                h_rows: Tensor, c_rows: Tensor, activations: Optional[Tensor] = None) -> bool:
    """The N-ary levels ``first..`` with input at the leaves only, in one C call
    (``tl_nary_levels``: the gathers, torch's MKL ``sgemm`` and the node updates), for
    ``weight_t`` the (padded) ``U^T`` ``[N*H, W]``, contiguous or the transposed view of a
    contiguous ``U``; with ``activations`` (training) the levels' activations are written there.
    Returns ``False`` (nothing done) where it cannot run: no ``sgemm`` found, other layouts,
    several torch threads with levels that torch would split between them."""
    gemm = sgemm_address()
    if gemm is None or first >= len(bounds) - 1 or bias is not None and not bias.is_contiguous():
        return False
    transposed = weight_t.is_contiguous()
    if not transposed and not weight_t.t().is_contiguous():
        return False
    most = max(bounds[k + 1] - bounds[k] for k in range(first, len(bounds) - 1))
    width = weight_t.shape[1]
    if not fits(most, width):
        return False
    work = h_rows.new_empty(most * (arity * hidden_size + (width if activations is None else 0)))
    lib.tl_nary_levels(gemm, first, len(bounds) - 1, _int64s(bounds), children.data_ptr(),
                       arity, hidden_size, width, weight_t.data_ptr(), int(transposed),
                       None if bias is None else bias.data_ptr(), h_rows.data_ptr(),
                       c_rows.data_ptr(), None if activations is None else activations.data_ptr(),
                       work.data_ptr())
    return True


def nary_inference(lib: ctypes.CDLL, bounds: tuple[int, ...], children: Tensor, arity: int,
                   hidden_size: int, weight_t: Tensor, bias_ih: Optional[Tensor],
                   bias_hh: Optional[Tensor], rows: Tensor, weight_ih: Tensor,
                   gather: Optional[Tensor]) -> Optional[tuple[Tensor, Tensor]]:
    """A whole N-ary inference layer with input at its leaves only, in one C call
    (``tl_nary_inference``): the biases (:func:`nary_biases`), the leaves' ``i | g | o``
    projection of the distinct input ``rows`` ``[D, X]`` (:func:`project_rows`), each distinct
    row's leaf state once, gathered by ``gather`` (each leaf's row: :func:`leaf_word_states`;
    ``None``: ``rows`` are the leaves'), and the levels (:func:`nary_levels`, ``weight_t`` as
    there). Returns the state buffers ``h_rows, c_rows`` ``[N + 1, H]`` (level order; the last
    row zero), or ``None`` (nothing done) where the call cannot run: no ``sgemm``, operands
    that are not contiguous float32, rows without columns, levels or leaves that several torch
    threads would split."""
    gemm = sgemm_address()
    transposed = weight_t.is_contiguous()
    biases = [b for b in (bias_ih, bias_hh) if b is not None]
    if gemm is None or not (transposed or weight_t.t().is_contiguous()) or \
            any(t.dtype != torch.float32 or not t.is_contiguous()
                for t in (rows, weight_ih, *biases)) or rows.shape[1] == 0:
        return None
    width, leaf_width = weight_t.shape[1], 3 * hidden_size + -3 * hidden_size % 16
    most = max(bounds[k + 1] - bounds[k] for k in range(1, len(bounds) - 1)) \
        if len(bounds) > 2 else 0
    distinct = rows.shape[0]
    if not (fits(most, width) and fits(distinct, leaf_width)):
        return None
    states = rows.new_empty(2, bounds[-1] + 1, hidden_size)
    work = rows.new_empty(width + leaf_width + max(distinct * (leaf_width + 2 * hidden_size),
                                                   most * (arity * hidden_size + width)))
    lib.tl_nary_inference(gemm, len(bounds) - 1, _int64s(bounds), children.data_ptr(), arity,
                          hidden_size, width, weight_t.data_ptr(), int(transposed),
                          None if bias_ih is None else bias_ih.data_ptr(),
                          None if bias_hh is None else bias_hh.data_ptr(), distinct,
                          rows.shape[1], rows.data_ptr(), weight_ih.data_ptr(), leaf_width,
                          None if gather is None else gather.data_ptr(), states[0].data_ptr(),
                          states[1].data_ptr(),
                          work.data_ptr())
    return states[0], states[1]


def _int64s(values: tuple[int, ...]) -> "ctypes.Array[ctypes.c_int64]":
    """``values`` as a C array of int64 for a call (a third of ``torch.tensor``'s time)."""
    return (ctypes.c_int64 * len(values))(*values)


def nary_backward(lib: ctypes.CDLL, bounds: tuple[int, ...], children: Tensor, arity: int,
                  padded_weight: Tensor, activations: Tensor, c_rows: Tensor,
                  grad_h_rows: Tensor, grad_c_rows: Tensor, leaf_activations: Tensor
                  ) -> Optional[tuple[Tensor, Tensor]]:
    """The N-ary backward of a layer in one C call (``tl_nary_backward``): the levels top-down,
    each level's pre-activation gradients from its activations and ``c`` (:func:`nary_grads`),
    the children's ``h`` gradients by sgemm with ``padded_weight`` ``[W, N * Hp]`` (``U``, each
    slot's columns padded to ``Hp``), then the leaves'. Returns the pre-activation gradients of
    the rows above the leaves (laid out as ``activations``) and of the leaves (as
    ``leaf_activations``), or ``None`` (nothing done) where it cannot run, as
    :func:`nary_levels`."""
    gemm = sgemm_address()
    if gemm is None or len(bounds) < 3 or not padded_weight.is_contiguous() or \
            not (activations.is_contiguous() and leaf_activations.is_contiguous()):
        return None
    most = max(bounds[k + 1] - bounds[k] for k in range(1, len(bounds) - 1))
    width, hidden_size = activations.shape[1], grad_h_rows.shape[1]
    if not (fits(most, width) and fits(*leaf_activations.shape)):
        return None
    padded_hidden = padded_weight.shape[1] // arity
    grad_pre, grad_leaf = activations.new_empty(activations.shape), \
        leaf_activations.new_empty(leaf_activations.shape)
    work = grad_pre.new_empty(most * arity * padded_hidden + hidden_size)
    lib.tl_nary_backward(gemm, len(bounds) - 1, _int64s(bounds), children.data_ptr(), arity,
                         hidden_size, width, padded_hidden, padded_weight.data_ptr(),
                         activations.data_ptr(), c_rows.data_ptr(), grad_pre.data_ptr(),
                         grad_h_rows.data_ptr(), grad_c_rows.data_ptr(),
                         leaf_activations.data_ptr(), leaf_activations.shape[1],
                         grad_leaf.data_ptr(), work.data_ptr())
    return grad_pre, grad_leaf


def leaf_grads(lib: ctypes.CDLL, activations: Tensor, c: Tensor, grad_h: Tensor,
               grad_c: Tensor) -> Tensor:
    """The leaves' ``i | g | o`` pre-activation gradients (laid out as ``activations``
    ``[L, W]``, zero padding) from their activations, ``c`` and the gradients of their ``h`` and
    ``c`` ``[L, H]`` (all contiguous), in one pass (``tl_nary_grads`` with arity 0)."""
    grad = activations.new_empty(activations.shape)
    total = activations.new_empty(c.shape[1])
    lib.tl_nary_grads(activations.shape[0], 0, c.shape[1], activations.shape[1],
                      activations.data_ptr(), c.data_ptr(), None, None, grad_h.data_ptr(),
                      grad_c.data_ptr(), grad.data_ptr(), None, total.data_ptr())
    return grad


class _ChildSumLayer(NamedTuple):
    """What a Child-Sum layer's one C call needs besides its tensors."""

    gemm: int  # sgemm's address
    num_levels: int
    starts: Tensor  # [num_levels + 1] the levels' first rows
    edge_starts: Tensor  # [num_levels + 1] the levels' first child edges
    most_rows: int  # of a level above the leaves
    most_edges: int


def _childsum_layer(bounds: tuple[int, ...], edge_bounds: tuple[int, ...], hidden_size: int,
                    tensors: tuple[Optional[Tensor], ...]) -> Optional[_ChildSumLayer]:
    """The sizes of one C call over a Child-Sum layer, or ``None`` where it cannot run: no
    ``sgemm``, no level above the leaves, a tensor not contiguous, levels that torch would
    split between several threads (see :func:`fits`)."""
    gemm = sgemm_address()
    if gemm is None or len(bounds) < 3 or \
            not all(t is None or t.is_contiguous() for t in tensors):
        return None
    levels = range(1, len(bounds) - 1)
    most_edges = max(edge_bounds[k + 1] - edge_bounds[k] for k in levels)
    if not fits(most_edges, 4 * hidden_size):
        return None
    return _ChildSumLayer(gemm, len(bounds) - 1, torch.tensor(bounds), torch.tensor(edge_bounds),
                          max(bounds[k + 1] - bounds[k] for k in levels), most_edges)


def childsum_inference(lib: ctypes.CDLL, bounds: tuple[int, ...], edge_bounds: tuple[int, ...],
                       children: Tensor, parent: Tensor, weight_hh: Tensor,
                       bias_forget: Optional[Tensor], bias_gates: Optional[Tensor],
                       h_rows: Tensor, c_rows: Tensor) -> bool:
    """The Child-Sum inference levels (input at the leaves only) in one C call
    (``tl_childsum_inference``), with ``U`` = ``weight_hh`` ``[4H, H]`` and the biases of the
    forget gates ``[H]`` and of ``i | g | o`` ``[3H]``. Returns ``False`` (nothing done) where it
    cannot run, as :func:`nary_levels`."""
    hidden_size = weight_hh.shape[1]
    call = _childsum_layer(bounds, edge_bounds, hidden_size, (weight_hh, bias_forget, bias_gates))
    if call is None:
        return False
    work = h_rows.new_empty((2 * call.most_edges + 4 * call.most_rows) * hidden_size)
    lib.tl_childsum_inference(call.gemm, call.num_levels, call.starts.data_ptr(),
                              call.edge_starts.data_ptr(), children.data_ptr(),
                              parent.data_ptr(), hidden_size, weight_hh.data_ptr(),
                              None if bias_forget is None else bias_forget.data_ptr(),
                              None if bias_gates is None else bias_gates.data_ptr(),
                              h_rows.data_ptr(), c_rows.data_ptr(), work.data_ptr(),
                              call.most_edges)
    return True


def childsum_forward(lib: ctypes.CDLL, bounds: tuple[int, ...], edge_bounds: tuple[int, ...],
                     children: Tensor, parent: Tensor, weight_hh: Tensor, forget_bias: Tensor,
                     node_bias: Tensor, h_rows: Tensor, c_rows: Tensor, activations: Tensor,
                     h_sums: Tensor, forget: Tensor) -> bool:
    """The Child-Sum training forward (input at the leaves only) in one C call
    (``tl_childsum_forward``), writing the activations, the children's summed ``h`` and the
    edges' forget gates the backward needs. Returns ``False`` (nothing done) where it cannot
    run, as :func:`nary_levels`."""
    hidden_size = weight_hh.shape[1]
    call = _childsum_layer(bounds, edge_bounds, hidden_size,
                           (weight_hh, forget_bias, node_bias, activations, h_sums, forget))
    if call is None:
        return False
    work = h_rows.new_empty(call.most_edges * hidden_size)
    lib.tl_childsum_forward(call.gemm, call.num_levels, call.starts.data_ptr(),
                            call.edge_starts.data_ptr(), children.data_ptr(), parent.data_ptr(),
                            hidden_size, weight_hh.data_ptr(), forget_bias.data_ptr(),
                            node_bias.data_ptr(), h_rows.data_ptr(), c_rows.data_ptr(),
                            activations.data_ptr(), h_sums.data_ptr(), forget.data_ptr(),
                            work.data_ptr())
    return True


def childsum_backward(lib: ctypes.CDLL, bounds: tuple[int, ...], edge_bounds: tuple[int, ...],
                      children: Tensor, parent: Tensor, weight_hh: Tensor, grad_gates: Tensor,
                      through: Tensor, grad_forget: Tensor, forget: Tensor, grad_h_rows: Tensor,
                      grad_c_rows: Tensor) -> bool:
    """The Child-Sum backward's levels in one C call (``tl_childsum_backward``). Returns
    ``False`` (nothing done) where it cannot run, as :func:`nary_levels`."""
    hidden_size = weight_hh.shape[1]
    call = _childsum_layer(bounds, edge_bounds, hidden_size,
                           (weight_hh, grad_gates, through, grad_forget, forget))
    if call is None:
        return False
    work = grad_gates.new_empty((call.most_rows + call.most_edges) * hidden_size)
    lib.tl_childsum_backward(call.gemm, call.num_levels, call.starts.data_ptr(),
                             call.edge_starts.data_ptr(), children.data_ptr(), parent.data_ptr(),
                             hidden_size, weight_hh.data_ptr(), grad_gates.data_ptr(),
                             through.data_ptr(), grad_forget.data_ptr(), forget.data_ptr(),
                             grad_h_rows.data_ptr(), grad_c_rows.data_ptr(), work.data_ptr(),
                             call.most_rows)
    return True
