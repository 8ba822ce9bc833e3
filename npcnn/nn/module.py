"""Module: the base class of every layer and network.

A layer subclasses :class:`Module` and writes two methods:

* ``forward(x)`` computes the output and keeps what the backward pass needs with
  ``self.save_for_backward(cache)``;
* ``backward(dout)`` receives dL/d(output), takes the cache back with ``self.pop_saved()``,
  accumulates dL/d(parameter) into each ``Parameter.grad`` and returns dL/d(input).

The saved-state rule (enforced here, so no layer has to think about it):

* every call of a module keeps its own saved state, and backward consumes them newest first, so
  a module used twice inside one forward (weight sharing) backpropagates correctly;
* each call of a module from user code (not from inside another module's forward) starts a new
  forward pass; a module reached by a new pass drops what the previous pass left unconsumed (a
  forward never followed by a backward, e.g. logging a batch in train mode, costs no memory);
* a backward that would use the state of a different forward is a ``RuntimeError`` naming the
  module: ``model.backward(g)`` where ``g`` came from the output of an earlier call of ``model``,
  or a child called again between its parent's forward and backward;
* ``dout`` must have the shape of the output it is the gradient of (never broadcast);
* under ``npcnn.no_grad()`` nothing is recorded (and nothing is dropped).

Parameters, buffers (non-trainable state such as BatchNorm's running statistics) and child
modules assigned as attributes are registered automatically, with PyTorch's names, so
``state_dict()`` keys such as ``"layer1.0.conv1.weight"`` match PyTorch's.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections import OrderedDict, deque, namedtuple
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import numpy as np

from .. import backend
from ..grad_mode import is_grad_enabled
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What ``load_state_dict`` returns (PyTorch's name): the lists of the module's keys absent
from the state dict (``missing_keys``) and of the state dict's keys the module lacks
(``unexpected_keys``); both empty after a strict load."""


class _Handle:
    """Returned by ``register_*_hook``; ``handle.remove()`` takes the hook away."""

    def __init__(self, remove):
        self.remove = remove


_NOTHING = object()  # a call that saved no cache (or whose cache was used)


class _Call:
    """What one forward call of a module leaves for its backward: the forward pass it belongs
    to, the saved cache, the output's shape, and (for calls from user code) which earlier pass
    produced each input."""

    __slots__ = ("pass_id", "cache", "out_shape", "sources", "filling")

    def __init__(self, pass_id, sources):
        self.pass_id, self.sources = pass_id, sources
        self.cache, self.out_shape, self.filling = _NOTHING, None, True


def _weak(array):
    try:
        return weakref.ref(array)
    except TypeError:  # an array type without weak references: keep it (8 at most) instead
        return lambda: array


class _Graph:
    """Global bookkeeping of forward passes: each call of a module from user code (not from
    inside another module's forward) starts pass number ``pass_id + 1``.

    ``outputs`` and ``gradients`` remember, weakly, the last few outputs of top-level calls and
    the gradients that top-level backward calls returned for them, so that
    ``model.backward(loss_fn.backward())`` can tell which forward its gradient belongs to.
    """

    def __init__(self):
        self.depth = 0
        self.pass_id = 0
        self.backward_pass = None
        self.input_grad_needed = True  # False: the next backward to start need not return dL/dinput
        self.outputs = deque(maxlen=8)
        self.gradients = deque(maxlen=8)

    @staticmethod
    def _find(entries, array):
        for ref, pass_id in reversed(entries):
            if ref() is array:
                return pass_id
        return None

    def sources(self, inputs):
        """For each input, the pass whose output it is (None when unknown)."""
        return tuple(self._find(self.outputs, x) if hasattr(x, "shape") else None for x in inputs)

    def remember_output(self, out, pass_id, inputs):
        """An output that is one of the inputs (an identity layer) is not remembered: it is the
        earlier array, not this pass's."""
        for item in (out if isinstance(out, (tuple, list)) else (out,)):
            if hasattr(item, "shape") and not any(item is x for x in inputs):
                self.outputs.append((_weak(item), pass_id))

    def remember_gradients(self, dx, sources, dout):
        grads = dx if isinstance(dx, (tuple, list)) and len(sources) > 1 else (dx,)
        for grad, source in zip(grads, sources):
            if source is not None and hasattr(grad, "shape") and grad is not dout:
                self.gradients.append((_weak(grad), source))

    def gradient_source(self, dout):
        return self._find(self.gradients, dout) if hasattr(dout, "shape") else None


_graph = _Graph()


@contextlib.contextmanager
def no_input_grad():
    """``with no_input_grad(): model.backward(dout)``: the caller will not use the gradient with
    respect to the model's input, so the layers that read that input may skip computing it.
    Only the first backward that starts inside the block is told, so compute ``dout`` (e.g.
    ``loss_fn.backward()``, itself a backward) before the block.

    PyTorch never computes it because the input does not require a gradient; here every
    backward returns one unless told otherwise. The training loops (``train_step``,
    ``Trainer``, ``fit``) say so; for a network whose first layer is a convolution that is
    the most expensive product of its first layer (LeNet-5: ~14% of a training step). Only the
    backward called directly inside the block is affected (its :attr:`Module.needs_input_grad`
    is False); it passes the permission on only where it knows the gradient goes nowhere else
    (``Sequential`` to its first layer; ``Conv1d``/``Conv2d``/``Linear`` then return None).
    Every other module computes and returns dL/dinput as usual, so nothing changes for it.
    """
    previous, _graph.input_grad_needed = _graph.input_grad_needed, False
    try:
        yield
    finally:
        _graph.input_grad_needed = previous

_DEVICES = {"cpu": "numpy", "numpy": "numpy", "cuda": "cupy", "gpu": "cupy", "cupy": "cupy"}


def _device_name(device):
    """The backend ("numpy" or "cupy") a PyTorch-style device names, or None if it is no device."""
    kind = getattr(device, "type", device) if not isinstance(device, (np.dtype, type)) else None
    if not isinstance(kind, str):
        return None
    return _DEVICES.get(kind.split(":")[0].strip().lower())


def _as_dtype(owner, dtype):
    """NumPy's dtype for ``dtype``: a NumPy dtype or its name, or a PyTorch dtype such as
    ``torch.float64`` (mapped by its name, so torch need not be imported)."""
    name = str(dtype)
    try:
        return np.dtype(name[len("torch."):] if name.startswith("torch.") else dtype)
    except TypeError:
        raise TypeError(f"{owner}.to: {dtype!r} is neither a device ('cpu', 'cuda') nor a dtype "
                        "(np.float32, np.float64, 'float64', torch.float64)") from None


def _shape_signature(value):
    """The shape of an output (a list of them for a tuple output); None for non-arrays."""
    if isinstance(value, (tuple, list)):
        return [_shape_signature(v) for v in value]
    return tuple(value.shape) if hasattr(value, "shape") else None


def _check_dout(module, expected, dout):
    """``dout`` must have the shape of the output it is the gradient of: never broadcast."""
    if expected is None or dout is None:
        return
    if isinstance(expected, list):
        if isinstance(dout, (tuple, list)) and len(dout) == len(expected):
            for e, d in zip(expected, dout):
                _check_dout(module, e, d)
        return
    if hasattr(dout, "shape") and tuple(dout.shape) != expected:
        name = type(module).__name__
        raise ValueError(f"{name}.backward: dout has shape {tuple(dout.shape)} but the output of {name}'s "
                         f"forward had shape {expected}; pass the gradient of that output")


def _managed_backward(backward):
    """``backward`` routed through :meth:`Module._run_backward`; a ``super().backward(dout)``
    from a subclass's backward runs the parent's code directly (the bookkeeping is done)."""

    @functools.wraps(backward)
    def managed(self, *args, **kwargs):
        if self.__dict__.get("_in_backward"):
            return backward(self, *args, **kwargs)
        object.__setattr__(self, "_in_backward", True)
        try:
            return self._run_backward(backward, args, kwargs)
        finally:
            object.__setattr__(self, "_in_backward", False)

    return managed


class Module:
    """Base class of layers and networks (PyTorch's ``nn.Module`` with an explicit backward)."""

    # set in __init__ with object.__setattr__ (declared here for type checkers)
    _parameters: OrderedDict[str, Any]  # name -> Parameter or None
    _buffers: OrderedDict[str, Any]
    _modules: OrderedDict[str, Any]  # name -> Module or None
    _forward_hooks: OrderedDict[object, Callable[..., Any]]
    _backward_hooks: OrderedDict[object, Callable[..., Any]]
    _backward_pre_hooks: OrderedDict[object, Callable[..., Any]]
    _calls: list[_Call]
    _backward_call: Optional[_Call]
    _input_grad: bool
    _dropped_pass: Optional[int]
    training: bool

    if TYPE_CHECKING:  # children, parameters and buffers are plain attributes set through __setattr__
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_calls", [])  # one _Call per forward call not yet backpropagated
        object.__setattr__(self, "_backward_call", None)  # the _Call whose backward is running
        object.__setattr__(self, "_input_grad", True)  # whether that backward must return dL/dinput
        object.__setattr__(self, "_dropped_pass", None)
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        registries = (self._parameters, self._buffers, self._modules)
        if isinstance(value, Parameter):
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        elif value is None and any(name in r for r in registries):
            for r in registries:
                if name in r:
                    r[name] = None  # e.g. ``bias=False``: the slot exists but holds nothing
        elif name in self._parameters or name in self._modules:
            raise TypeError(f"{type(self).__name__}.{name} holds a Parameter or Module; "
                            f"cannot assign {type(value).__name__}")
        object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop ``name`` from every registry but ``keep`` (replacing in place keeps its position,
        so swapping a Sequential's last layer leaves it last, as in PyTorch)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)

    def register_buffer(self, name: str, array: Any) -> None:
        """Register non-trainable state (saved in ``state_dict``, never touched by optimizers)."""
        self._forget(name, keep=self._buffers)
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{name}: expected a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Optional[Module]) -> None:
        """Register a child module under ``name`` (used by containers with numeric names)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name}: expected a Module, got {type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------------ forward and backward

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; keep what backward needs with ``self.save_for_backward(cache)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """Given dL/d(output), accumulate the parameters' gradients and return dL/d(input)."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __init_subclass__(cls, **kwargs):
        """Wrap each subclass's own ``backward`` so the bookkeeping of :meth:`_run_backward`
        (saved state, dout shape, hooks) happens here once instead of in every layer."""
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = _managed_backward(cls.__dict__["backward"])

    def __call__(self, *inputs: Any) -> Any:
        """``module(x)``: run ``forward`` and the forward hooks, recording this call (its pass,
        cache and output shape) for the backward that will consume it."""
        self._check_device(inputs)
        if not is_grad_enabled():
            return self._forward_with_hooks(inputs)  # records nothing: backward is impossible
        top = _graph.depth == 0
        if top:
            _graph.pass_id += 1  # a call from user code starts a new forward pass
        call = _Call(_graph.pass_id, _graph.sources(inputs) if top else None)
        self._push_call(call)
        _graph.depth += 1
        try:
            out = self._forward_with_hooks(inputs)
        except BaseException:
            self._calls.remove(call)
            raise
        finally:
            _graph.depth -= 1
        call.filling = False
        call.out_shape = _shape_signature(out)
        if top:
            _graph.remember_output(out, call.pass_id, inputs)
        return out

    def _forward_with_hooks(self, inputs):
        out = self.forward(*inputs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, inputs, out)
            if replaced is not None:
                out = replaced
        return out

    def _push_call(self, call):
        """Stack ``call``; calls left over from an earlier forward pass (forwards never followed
        by a backward, e.g. logging a batch in train mode) are dropped first, so memory never
        grows and a backward cannot silently use them."""
        if self._calls and self._calls[-1].pass_id != call.pass_id:
            object.__setattr__(self, "_dropped_pass", self._calls[-1].pass_id)
            self._calls.clear()
        self._calls.append(call)

    def _check_device(self, inputs):
        """Inputs must live where this layer's parameters live: a clear error naming the layer,
        where CuPy would fail inside a kernel with "Unsupported type <class 'numpy.ndarray'>"."""
        param = next((p for p in self._parameters.values() if p is not None), None)
        if param is None:
            return
        on_gpu = backend.is_cupy_array(param.data)
        for x in inputs:
            if hasattr(x, "shape") and backend.is_cupy_array(x) != on_gpu:
                raise TypeError(
                    f"{type(self).__name__}: the input is a {'NumPy' if on_gpu else 'CuPy'} array but the "
                    f"parameters are {'CuPy (GPU)' if on_gpu else 'NumPy'} arrays; move the input with "
                    "npcnn.backend.asarray(x) (or the model with model.to() under the input's backend)"
                )

    @property
    def needs_input_grad(self) -> bool:
        """Inside ``backward``: False when the caller will not use the returned dL/d(input)
        (the backward was started under :func:`no_input_grad` and no backward hook is
        registered on this module); the layer may then skip computing it and return None.
        True everywhere else (the default)."""
        return getattr(self, "_input_grad", True)

    def save_for_backward(self, cache: Any) -> None:
        """Keep ``cache`` for the backward pass of this call; inside ``no_grad()`` keep nothing.

        Each call of the module keeps its own cache, so a module used twice in one forward
        (weight sharing) gets both back, newest first, in its two backward calls.
        """
        if not is_grad_enabled():
            return
        if self._calls and self._calls[-1].filling:
            self._calls[-1].cache = cache
        else:  # forward() called directly rather than through module(x)
            call = _Call(_graph.pass_id, None)
            call.cache, call.filling = cache, False
            self._push_call(call)

    def pop_saved(self) -> Any:
        """Return the cache of the forward call this backward belongs to, once."""
        call = self._backward_call
        if call is None and self._calls:  # backward() of a module used outside the wrapper
            call = self._calls.pop()
        if call is None or call.cache is _NOTHING:
            raise RuntimeError(self._no_state_message())
        cache, call.cache = call.cache, _NOTHING
        return cache

    def _no_state_message(self):
        name = type(self).__name__
        dropped = ""
        if self._dropped_pass is not None:
            dropped = (f"; its state from forward #{self._dropped_pass} was dropped when {name} was called "
                       "again in a later forward before that one's backward (to use one module twice before "
                       "a backward, make both calls inside one Module's forward; or use two modules)")
        return (f"{name}.backward() needs a forward pass first: it was called before forward, a second time "
                f"after one forward, or after a forward under npcnn.no_grad(){dropped}")

    @property
    def _saved(self):
        """The newest saved cache, or None when nothing is saved (kept for tests and tools)."""
        for call in reversed(self._calls):
            if call.cache is not _NOTHING:
                return call.cache
        return None

    def _run_backward(self, backward, args, kwargs):
        """The one road every backward takes: pop this call's record, check ``dout`` against
        the output it belongs to, run the backward pre-hooks (which may replace ``dout``; gradient
        injection is one), the layer's backward, then the backward hooks."""
        dout = args[0] if args else next(iter(kwargs.values()), None)
        call = self._calls.pop() if self._calls else None
        top = _graph.backward_pass is None
        if call is not None:
            self._check_backward_call(call, dout, top)
            _check_dout(self, call.out_shape, dout)
        for hook in list(self._backward_pre_hooks.values()):
            replaced = hook(self, dout)
            if replaced is not None:
                dout = replaced
                _check_dout(self, None if call is None else call.out_shape, dout)
        if args:
            args = (dout,) + tuple(args[1:])
        elif kwargs:
            kwargs = dict(kwargs)
            kwargs[next(iter(kwargs))] = dout
        previous_call, previous_need = self._backward_call, getattr(self, "_input_grad", True)
        # A backward hook may read dx, so a module with one always computes it; the children's
        # backward calls need theirs unless this module says otherwise (no_input_grad).
        need, _graph.input_grad_needed = _graph.input_grad_needed or bool(self._backward_hooks), True
        object.__setattr__(self, "_backward_call", call)
        object.__setattr__(self, "_input_grad", need)
        if top and call is not None:
            _graph.backward_pass = call.pass_id
        try:
            dx = backward(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_backward_call", previous_call)
            object.__setattr__(self, "_input_grad", previous_need)
            _graph.input_grad_needed = True
            if top:
                _graph.backward_pass = None
        for hook in list(self._backward_hooks.values()):
            replaced = hook(self, dx, dout)
            if replaced is not None:
                dx = replaced
        if top and call is not None and call.sources:
            _graph.remember_gradients(dx, call.sources, dout)
        return dx

    def _check_backward_call(self, call, dout, top):
        """A backward must belong to the forward its saved state comes from."""
        name = type(self).__name__
        advice = ("call backward before the next forward, or run extra forwards (logging, evaluation) under "
                  "`with npcnn.no_grad():`")
        if top:
            source = _graph.gradient_source(dout)
            if source is not None and source != call.pass_id:
                self._calls.append(call)  # leave the state as it was
                raise RuntimeError(
                    f"{name}.backward: the gradient it was given comes from the output of forward #{source}, "
                    f"but {name} was called again since (forward #{call.pass_id}) and holds that call's saved "
                    f"state; {advice}")
        elif _graph.backward_pass is not None and call.pass_id != _graph.backward_pass:
            self._calls.append(call)
            raise RuntimeError(
                f"{name}.backward: its saved state comes from forward #{call.pass_id}, but the backward running "
                f"is that of forward #{_graph.backward_pass} ({name} was called again in between); {advice}")

    # ------------------------------------------------------------------ hooks

    def register_forward_hook(self, hook: Callable[..., Any]) -> _Handle:
        """``hook(module, inputs, output)`` runs after each forward; may return a new output."""
        key = object()
        self._forward_hooks[key] = hook
        return _Handle(lambda: self._forward_hooks.pop(key, None))

    def register_backward_pre_hook(self, hook: Callable[..., Any]) -> _Handle:
        """``hook(module, grad_output)`` runs before each backward; may return a new grad_output,
        which the layer's backward then receives (gradient injection, as in ``npcnn.viz``).
        PyTorch's ``register_full_backward_pre_hook``, with arrays rather than tuples."""
        key = object()
        self._backward_pre_hooks[key] = hook
        return _Handle(lambda: self._backward_pre_hooks.pop(key, None))

    def register_backward_hook(self, hook: Callable[..., Any]) -> _Handle:
        """``hook(module, grad_input, grad_output)`` runs after each backward; may return a new
        grad_input. ``grad_output`` is the gradient the layer received (after the pre-hooks)."""
        key = object()
        self._backward_hooks[key] = hook
        return _Handle(lambda: self._backward_hooks.pop(key, None))

    register_full_backward_hook = register_backward_hook
    register_full_backward_pre_hook = register_backward_pre_hook

    # ------------------------------------------------------------------ traversal

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) of each direct child, in registration order."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct child modules, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all its descendants, each once, with dotted names."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, each once (see :meth:`named_modules`)."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every Parameter once (shared ones too), named like ``"features.0.weight"``."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        """Every Parameter once, in ``named_parameters`` order (what optimizers take)."""
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """(dotted name, array) of every buffer (running statistics, counters)."""
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self) -> Iterator[Any]:
        """Every buffer array (see :meth:`named_buffers`)."""
        for _, buf in self.named_buffers():
            yield buf

    # ------------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm uses batch statistics)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode; backward still works (saliency maps need it)."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``grad = None`` (default, as PyTorch), or arrays of
        zeros with ``set_to_none=False`` (for parameters that have a gradient)."""
        for param in self.parameters():
            param.zero_grad(set_to_none=set_to_none)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(module)`` on every submodule, children first, then on this module (PyTorch's
        order, used for custom initialization); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        """The submodule at the dotted path ``target`` (``""`` is this module), e.g.
        ``model.get_submodule("layer1.0.conv1")``; an AttributeError names the missing part."""
        module = self
        if target == "":
            return module
        for item in target.split("."):
            child = module._modules.get(item)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{item}` (looking up {target!r})")
            module = child
        return module

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (False also drops their gradients); returns self."""
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
            if not requires_grad:
                param.grad = None
        return self

    def freeze(self) -> Module:
        """Stop training every parameter of this module (optimizers skip frozen parameters)."""
        return self.requires_grad_(False)

    def unfreeze(self) -> Module:
        """Train every parameter of this module again (undoes :meth:`freeze`)."""
        return self.requires_grad_(True)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (buffers are not parameters)."""
        return sum(int(p.size) for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ dtype and backend

    def to(self, *args: Any, dtype: Any = None, device: Any = None, non_blocking: bool = False) -> Module:
        """Move every parameter and buffer to a backend and/or cast floats to a dtype.

        Accepts PyTorch's forms: ``model.to("cpu")`` / ``model.to("cuda")`` (also ``"cuda:0"``,
        ``"numpy"``, ``"cupy"`` or an object with a ``.type`` such as ``torch.device``) moves the
        arrays to NumPy / CuPy; ``model.to(np.float64)`` (or ``model.double()``) casts the float
        arrays (integer buffers keep their dtype; a dtype name or a PyTorch dtype such as
        ``torch.float64`` works too); ``model.to("cuda", np.float32)`` does both.
        ``model.to()`` moves everything to the active backend (``npcnn.set_backend``). Inputs
        must then live on the same backend (``npcnn.backend.asarray`` under that backend).
        ``non_blocking`` is accepted for PyTorch compatibility and ignored.
        """
        for arg in args:
            if _device_name(arg) is not None:
                device = arg
            else:
                dtype = arg
        target = _as_dtype(type(self).__name__, dtype) if dtype is not None else None
        name = _device_name(device) if device is not None else None
        if device is not None and name is None:
            raise ValueError(f"{type(self).__name__}.to: unknown device {device!r}; expected 'cpu' or 'cuda'")

        def convert(a):
            a_dtype = np.dtype(a.dtype)
            return backend.asarray(a, dtype=target if target is not None and a_dtype.kind == "f" else a_dtype)

        with (backend.use_backend(name) if name is not None else contextlib.nullcontext()):
            for module in self.modules():
                for param in module._parameters.values():
                    if param is not None:
                        param.data = convert(param.data)
                        param.grad = None if param.grad is None else convert(param.grad)
                for buf_name, buf in list(module._buffers.items()):
                    if buf is not None:
                        setattr(module, buf_name, convert(buf))
        return self

    def cpu(self) -> Module:
        """Move every parameter and buffer to NumPy (``to("cpu")``)."""
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Module:
        """Move every parameter and buffer to CuPy (``to("cuda")``); ``device`` is accepted for
        PyTorch compatibility (npcnn uses CuPy's current device)."""
        return self.to("cuda")

    def double(self) -> Module:
        """Cast float parameters and buffers to float64 (``to(np.float64)``)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast float parameters and buffers to float32 (``to(np.float32)``)."""
        return self.to(np.float32)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> OrderedDict[str, Any]:
        """Ordered ``{name: array}`` of parameters and buffers (references, as in PyTorch)."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    state[f"{module_name}.{name}" if module_name else name] = param.data
            for name, buf in module._buffers.items():
                if buf is not None:
                    state[f"{module_name}.{name}" if module_name else name] = buf
        return state

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Every key, shape and dtype is checked before anything is assigned, so a failing load
        leaves the module untouched. Shapes must match exactly; values are cast to each slot's
        dtype (an integer slot takes integers only; a float32 slot refuses float64 values beyond
        float32's range instead of loading them as inf) and moved to the active backend. With
        ``strict=True`` a missing or unexpected key is an error naming the keys.
        """
        slots = {}
        for module_name, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        slots[f"{module_name}.{name}" if module_name else name] = (module, registry, name)
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict into {type(self).__name__}: missing keys {missing}, unexpected keys {unexpected}"
            )
        staged = []
        for key, (module, registry, name) in slots.items():
            if key in state_dict:
                current = registry[name]
                current_array = current.data if isinstance(current, Parameter) else current
                staged.append((module, name, current, self._checked_value(key, state_dict[key], current_array)))
        for module, name, current, array in staged:  # all checks passed: now assign
            if isinstance(current, Parameter):
                current.data = array
            else:
                setattr(module, name, array)
        return IncompatibleKeys(missing, unexpected)

    def _checked_value(self, key, value, current):
        """``value`` as a new array of ``current``'s dtype and shape, or a ValueError naming ``key``."""
        where = f"load_state_dict into {type(self).__name__}: '{key}'"
        shape = tuple(np.shape(value))
        if shape != tuple(current.shape):
            raise ValueError(f"load_state_dict: '{key}' has shape {shape} in the state dict "
                             f"but {tuple(current.shape)} in {type(self).__name__}")
        source = np.dtype(getattr(value, "dtype", None) or np.asarray(value).dtype)
        target = np.dtype(current.dtype)
        if source.kind not in "biuf" or (target.kind in "biu" and source.kind == "f"):
            raise ValueError(f"{where} has dtype {source}, which cannot be loaded into a {target} slot")
        xp = backend.get_array_module(value)
        if target.kind == "f" and source.kind == "f" and source.itemsize > target.itemsize:
            big = xp.isfinite(value) & (xp.abs(value) > float(np.finfo(target).max))
            if bool(big.any()):
                raise ValueError(f"{where} holds finite {source} values beyond the range of {target} "
                                 f"(|x| > {float(np.finfo(target).max):.3e}); they would load as inf")
        return backend.asarray(value, dtype=target).copy()

    # ------------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """The text inside the parentheses of ``repr(module)`` (the constructor arguments, as
        PyTorch prints them); empty by default."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = list(self.named_children())
        if not children:
            return lines[0] + ")"
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"

    def summary(self, input_shape: tuple[int, ...], file: Any = None) -> Any:
        """Print the table of layers, output shapes, parameters and multiply-accumulates, and
        return it as a :class:`npcnn.nn.summary.Profile`.

        ``input_shape`` leaves out the batch dimension, e.g. ``(1, 32, 32)`` for LeNet-5.
        """
        from .summary import summary

        return summary(self, input_shape, file=file)
