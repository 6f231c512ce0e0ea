"""Checkpoint files: a model's state_dict and constructor config, its vocabulary, the training
settings and (to resume) the optimizer, epoch and RNG states.

Written atomically (:func:`treelstm.files.atomic_write`) with a SHA-256 digest of the content;
read back with ``torch.load(weights_only=True)`` and checked field by field. Inference
(:mod:`treelstm.predict`) imports this module alone, never the training loop.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional, Union

import torch
from torch import Tensor, nn

from ..checks import all_finite
from ..data import Vocab
from ..files import PathLike, atomic_write
from .config import MODEL_KINDS

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "Checkpoint", "LoadedModel",
           "save_checkpoint", "load_checkpoint", "load_model"]

CHECKPOINT_FORMAT = "treelstm.checkpoint"
CHECKPOINT_VERSION = 1
_MODEL_CLASSES = {cls.__name__: cls for cls in MODEL_KINDS.values()}


def _vocab_to_dict(vocab: Vocab) -> dict:
    return {"itos": vocab.itos, "lower": vocab.lower, "unk": vocab.unk, "pad": vocab.pad}


def _checksum(content: dict) -> str:
    """SHA-256 over every field but ``"checksum"``: tensors by dtype, shape and bytes, the rest
    by ``repr``. torch's zip reader does not check the data CRCs, so this is what catches a
    damaged tensor."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{flat.dtype}{tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        elif isinstance(value, dict):
            digest.update(f"D{len(value)}".encode())
            for key in sorted(value, key=repr):
                digest.update(f"K{key!r}".encode())
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"L{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"V{value!r}".encode())

    feed({key: value for key, value in content.items() if key != "checksum"})
    return digest.hexdigest()


def save_checkpoint(path: PathLike, model: nn.Module, vocab: Vocab, config: Optional[dict] = None,
                    optimizer: Optional[torch.optim.Optimizer] = None, epoch: Optional[int] = None,
                    rng_state: Optional[dict] = None, extra: Optional[dict] = None, *,
                    model_classes: Optional[Mapping[str, type]] = None) -> None:
    """Write ``model`` (state_dict + its constructor config as JSON) and ``vocab`` atomically.

    Args:
        path: the file; written through a temporary file in the same directory + ``os.replace``.
        model: a :class:`~treelstm.TreeLSTMClassifier` or :class:`~treelstm.LSTMClassifier` (or
            one of ``model_classes``); it has a ``config`` property of its constructor arguments.
        vocab: the vocabulary the model's embedding rows follow.
        config: the training settings (JSON-serialisable), e.g. ``TrainConfig.to_dict()``.
        optimizer: to resume training: its ``state_dict()`` is stored too.
        epoch: the number of completed epochs.
        rng_state: :func:`get_rng_state`, to resume with the same random numbers.
        extra: anything else JSON-serialisable (e.g. the training history).
        model_classes: the model classes by name, for other models than the sentiment
            classifiers (:mod:`treelstm.sick` passes ``RelatednessModel``); the same mapping
            must be given to :func:`load_checkpoint`.
    """
    classes = _MODEL_CLASSES if model_classes is None else model_classes
    class_name = type(model).__name__
    if class_name not in classes:
        raise TypeError(f"save_checkpoint: model must be one of {sorted(classes)}; got "
                        f"{class_name}")
    content = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "model_class": class_name,
        "model_config": json.dumps(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": json.dumps(_vocab_to_dict(vocab)),
        "config": json.dumps(config if config is not None else {}),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": None if epoch is None else int(epoch),
        "rng_state": rng_state,
        "extra": json.dumps(extra if extra is not None else {}),
    }
    content["checksum"] = _checksum(content)
    atomic_write(path, lambda file: torch.save(content, file))


@dataclass
class Checkpoint:
    """The content of a checkpoint file, as read by :func:`load_checkpoint`."""

    path: str
    model_class: str
    model_config: dict
    state_dict: dict
    vocab: Vocab
    config: dict
    optimizer: Optional[dict]
    epoch: Optional[int]
    rng_state: Optional[dict]
    extra: dict
    #: class name -> class, of the models this checkpoint may hold (``load_checkpoint``'s).
    model_classes: Mapping[str, type] = field(default_factory=lambda: _MODEL_CLASSES, repr=False)

    def build_model(self) -> nn.Module:
        """The model with the stored weights (ValueError naming the file if they do not fit)."""
        try:
            model = self.model_classes[self.model_class](**self.model_config)
            model.load_state_dict(self.state_dict)
        except (TypeError, ValueError, RuntimeError, AssertionError, IndexError,
                OverflowError) as error:
            raise ValueError(f"{self.path}: the stored weights do not fit a {self.model_class} "
                             f"(or its settings): {type(error).__name__}: {error}") from None
        for name, parameter in model.named_parameters():  # e.g. float64 1e300 -> float32 inf
            if not all_finite(parameter):
                raise ValueError(f"{self.path}: weight {name!r} holds values that are not finite "
                                 f"in {parameter.dtype}; refusing a model that cannot give valid "
                                 "predictions")
        return model


class LoadedModel(NamedTuple):
    """What :func:`load_model` returns: the model (eval mode), its vocabulary, the training
    settings."""

    model: nn.Module
    vocab: Vocab
    config: dict


# torch's weights-only unpickler names the global it refused, e.g. "GLOBAL posix.system".
_FORBIDDEN_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu", *,
                    model_classes: Optional[Mapping[str, type]] = None) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Never runs code from the file: ``weights_only=True`` unpickles tensors and plain
    containers only (a pickled object of any other class, e.g. one whose unpickling would call
    ``os.system``, is refused before anything is called), and it cannot be overridden by
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. The content is then checked against its SHA-256
    digest (torch's zip reader does not check CRCs), its fields' types, and the vocabulary
    against the model's ``vocab_size``. ``model_classes``: those given to
    :func:`save_checkpoint` (default: the sentiment classifiers); another class is refused.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, if it is truncated, corrupt, holds a pickled object other
            than tensors and plain containers, or is not a treelstm checkpoint.
    """
    name = os.fspath(path)
    content = _read(path, name, map_location)
    _check_envelope(name, content)
    classes = _MODEL_CLASSES if model_classes is None else model_classes
    if content["model_class"] not in classes:
        kind = _FILE_KINDS.get(content["model_class"])
        raise ValueError(f"{name}: unknown model class {content['model_class']!r}; expected one "
                         f"of {sorted(classes)}{f' (it holds {kind})' if kind else ''}")
    model_config, vocab, config, extra = _metadata(name, content)
    _check_checkpoint_fields(name, content)
    if model_config.get("vocab_size") != len(vocab):
        raise ValueError(f"{name}: the stored vocabulary has {len(vocab)} words but the model was "
                         f"built for vocab_size={model_config.get('vocab_size')!r}: vocabulary "
                         "and weights do not belong together")
    return Checkpoint(path=name, model_class=content["model_class"], model_config=model_config,
                      state_dict=content["state_dict"], vocab=vocab, config=config,
                      optimizer=content.get("optimizer"), epoch=content.get("epoch"),
                      rng_state=content.get("rng_state"), extra=extra, model_classes=classes)


#: What the files of the package's other model classes are, for a checkpoint given where
#: another kind was expected.
_FILE_KINDS = {
    "SpanParser": "a text parser, from 'parser train': give it to predict as --parser",
    "RelatednessModel": "a SICK relatedness model, from 'sick-train': evaluate it with "
                        "sick-eval",
    "TreeLSTMClassifier": "a sentiment classifier, from 'train': label trees with predict",
    "LSTMClassifier": "a sentiment classifier, from 'train': label sentences with predict",
}


def _read(path: PathLike, name: str, map_location: Union[str, torch.device]) -> Any:
    """``torch.load(weights_only=True)`` of the file; ValueError naming it if it cannot be read
    as one (a refused pickled object says so)."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{name}: is a directory; expected a checkpoint file such as "
                                f"{os.path.join(name, 'best.pt')}")
    if os.path.isfile(path):
        _check_file_kind(name)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:  # truncated zip, bad pickle, forbidden global, ...
        text = str(error).strip()
        forbidden = _FORBIDDEN_GLOBAL.search(text)
        if forbidden or "Weights only load failed" in text:
            what = f" ({forbidden.group(1)})" if forbidden else ""
            raise ValueError(f"{name}: not a readable treelstm checkpoint: it holds a pickled "
                             f"object other than tensors and plain containers{what}; refused "
                             "without running it") from None
        reason = text.splitlines()[0][:200] if text else "(no message)"
        raise ValueError(f"{name}: not a readable treelstm checkpoint (corrupt or truncated?): "
                         f"{type(error).__name__}: {reason}") from None


def _check_envelope(name: str, content: Any) -> None:
    """ValueError naming the file unless ``content`` is a checkpoint of this format and version,
    with dense weights, an intact digest and its fields of the right types."""
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{name}: not a treelstm checkpoint (expected a dict with format "
                         f"{CHECKPOINT_FORMAT!r})")
    if content.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{name}: checkpoint version {content.get('version')!r}; this library "
                         f"reads version {CHECKPOINT_VERSION}")
    state_dict = content.get("state_dict")
    for key, value in state_dict.items() if isinstance(state_dict, dict) else ():
        if isinstance(value, Tensor) and (value.layout != torch.strided or value.is_meta):
            raise ValueError(f"{name}: weight {key!r} is a {value.layout} / meta tensor; a "
                             "checkpoint holds dense tensors with data")
    if content.get("checksum") != _checksum(content):
        raise ValueError(f"{name}: checksum mismatch: the checkpoint is damaged")
    expected = {"model_class": str, "model_config": str, "state_dict": dict, "vocab": str,
                "config": str, "extra": str}
    for key, kind in expected.items():
        if not isinstance(content.get(key), kind):
            raise ValueError(f"{name}: checkpoint field {key!r} should be a {kind.__name__}, got "
                             f"{type(content.get(key)).__name__}")


def _metadata(name: str, content: dict) -> tuple[dict, Vocab, dict, dict]:
    """The JSON fields: model settings, vocabulary, training settings, extra; ValueError naming
    the file if they are damaged."""
    try:
        model_config = json.loads(content["model_config"])
        vocab_fields = json.loads(content["vocab"])
        config = json.loads(content["config"])
        extra = json.loads(content["extra"])
        if not isinstance(vocab_fields.get("lower"), bool):
            raise ValueError(f"vocab 'lower' should be true or false, got "
                             f"{vocab_fields.get('lower')!r}")
        vocab = Vocab(vocab_fields["itos"], lower=vocab_fields["lower"], unk=vocab_fields["unk"],
                      pad=vocab_fields["pad"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{name}: damaged checkpoint metadata: {error}") from None
    except RecursionError:
        raise ValueError(f"{name}: damaged checkpoint metadata: JSON nested too deeply") from None
    for key, value in (("model_config", model_config), ("config", config), ("extra", extra)):
        if not isinstance(value, dict):
            raise ValueError(f"{name}: damaged checkpoint metadata: {key} should be a JSON object, "
                             f"got {type(value).__name__}")
    return model_config, vocab, config, extra


def _check_checkpoint_fields(name: str, content: dict) -> None:
    """ValueError naming the file and field unless the weights are finite tensors and the
    training fields have their types (a crafted file can carry a valid digest)."""
    for key, value in content["state_dict"].items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ValueError(f"{name}: checkpoint field 'state_dict' should map names to tensors; "
                             f"got {key!r}: {type(value).__name__}")
        if not all_finite(value):
            raise ValueError(f"{name}: weight {key!r} holds NaN or infinite values; refusing a "
                             "model that cannot give valid predictions")
    epoch = content.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise ValueError(f"{name}: checkpoint field 'epoch' should be an integer >= 0 or None; "
                         f"got {epoch!r}")
    for key in ("optimizer", "rng_state"):
        value = content.get(key)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name}: checkpoint field {key!r} should be a dict or None; got "
                             f"{type(value).__name__}")


def _check_file_kind(name: str) -> None:
    """ValueError naming the file unless it starts like a file ``torch.save`` writes (a zip
    archive, or a bare pickle that the weights-only loader will judge)."""
    with open(name, "rb") as file:
        head = file.read(8)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return
    if not head:
        kind = "an empty file (0 bytes)"
    elif head.startswith(b"\x89PNG"):
        kind = "a PNG image"
    elif head.lstrip()[:1] in (b"{", b"["):
        kind = "JSON text (metrics.json?)"
    else:
        try:
            head.decode("utf-8")
            kind = "a text file"
        except UnicodeDecodeError:
            kind = "a file of another kind"
    raise ValueError(f"{name}: {kind}, not a treelstm checkpoint (the zip archive that train "
                     "writes as best.pt / checkpoint.pt)")


def load_model(path: PathLike, map_location: Union[str, torch.device] = "cpu", *,
               model_classes: Optional[Mapping[str, type]] = None) -> LoadedModel:
    """``(model, vocab, config)`` from a checkpoint; the model is in eval mode on
    ``map_location``. ValueError naming the file if it is corrupt (``model_classes``: as
    :func:`load_checkpoint`)."""
    checkpoint = load_checkpoint(path, map_location=map_location, model_classes=model_classes)
    model = checkpoint.build_model().to(map_location)
    model.eval()
    return LoadedModel(model, checkpoint.vocab, checkpoint.config)
