"""Which Keras layer classes execution ``torch`` can run, and how (:mod:`bractivate.torch_exec`).

A translator takes a layer and returns a function ``(inputs, training) -> output`` on NCHW
torch tensors that computes what the layer computes, on the layer's own variables, or None for
a layer that computes nothing (``InputLayer``). It raises :func:`unsupported` for a
configuration it does not cover. :mod:`bractivate.torch_exec` registers Keras's own layers;
a module that defines layers of its own registers them next to them
(:mod:`bractivate.baselines.nasunet`).

This module imports neither torch nor Keras, so a module can register its layers without
importing torch in a job that never runs execution ``torch``; translators import torch when
they are called.
"""

from __future__ import annotations

from typing import Any, Callable

Step = Callable[[list, bool], Any]
Translator = Callable[[Any], "Step | None"]

TRANSLATORS: dict[type, Translator] = {}


def register(layer_class: type, translator: Translator | None = None):
    """Register ``translator`` for layers of exactly ``layer_class`` (not its subclasses,
    which may compute something else). Without ``translator``, a decorator."""
    if translator is None:
        return lambda fn: register(layer_class, fn)
    TRANSLATORS[layer_class] = translator
    return translator


def unsupported(layer, why: str) -> NotImplementedError:
    """The error that refuses ``layer``, naming it and why."""
    return NotImplementedError(f"execution 'torch' cannot run layer {layer.name!r} "
                               f"({type(layer).__name__}): {why}; use execution 'eager' or 'auto'")


def translate(layer) -> Step | None:
    """``layer`` as a function ``(inputs, training) -> output`` on NCHW tensors, by the
    translator registered for its class (None: the layer passes its input on)."""
    translator = TRANSLATORS.get(type(layer))
    if translator is None:
        names = ", ".join(sorted(cls.__name__ for cls in TRANSLATORS))
        raise unsupported(layer, f"only {names} are translated")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise unsupported(layer, "expected data_format channels_last")
    return translator(layer)
