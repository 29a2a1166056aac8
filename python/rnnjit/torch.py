"""PyTorch: the custom op torch.ops.rnnjit.rnn_step and RNNCell, an nn.Module that runs it.

    import rnnjit.torch
    cell = rnnjit.torch.RNNCell(1024, 256, 128).cuda()   # i2h, h2o: KernelBench's VanillaRNN names
    y = cell(x)                                           # x: (batch, 1024); cell.hidden: (batch, 256)

The op has a fake (meta) implementation, so torch.compile traces through it without a graph break,
and it only enqueues work on the current stream, so it can be captured in a CUDA graph (run a
shape once before capturing it: inside a capture rnnjit cannot tune). Inference only: a call that
autograd would have to differentiate raises rnnjit.Unsupported.
"""
import threading

import torch
from torch import Tensor, nn

from ._engine import Engine
from ._errors import InvalidArgument, Unsupported

__all__ = ["rnn_step", "RNNCell", "engine", "set_engine"]

_engines = {}
_engines_lock = threading.Lock()

_NO_GRAD = ("rnnjit is inference only: rnnjit::rnn_step has no gradient, but {what} requires grad while grad "
            "mode is on. Call it under torch.no_grad() or torch.inference_mode(), or detach the tensors "
            "(RNNCell's parameters are created with requires_grad=False).")


def engine(device=None):
    """The engine rnnjit.torch uses for a CUDA device (default: the current one), made on first
    use with the cache from the environment ($RNNJIT_CACHE, else ~/.cache/rnnjit/cache.sqlite)."""
    if device is None:
        index = torch.cuda.current_device()
    elif isinstance(device, int):
        index = device
    else:
        device = torch.device(device)
        if device.type != "cuda":
            raise InvalidArgument(f"rnnjit runs on CUDA devices, not on {device}")
        index = torch.cuda.current_device() if device.index is None else device.index
    e = _engines.get(index)
    if e is None:
        with _engines_lock:
            e = _engines.get(index)
            if e is None:
                e = _engines[index] = Engine(index)
    return e


def set_engine(e):
    """Makes `e` (an rnnjit.Engine, e.g. with its own cache path) the one used for its device."""
    if not isinstance(e, Engine):
        raise InvalidArgument(f"set_engine takes an rnnjit.Engine, not {type(e).__name__}")
    with _engines_lock:
        _engines[e.device] = e


def _engine_of(x):
    index = x.get_device()
    e = _engines.get(index)
    if e is not None:
        return e
    if index < 0:
        raise InvalidArgument(f"x is on {x.device}: rnnjit runs on CUDA devices")
    return engine(index)


@torch.library.custom_op("rnnjit::rnn_step", mutates_args=())
def _rnn_step_op(x: Tensor, h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                 precision: str = "default") -> tuple[Tensor, Tensor]:
    return _engine_of(x).rnn_step(x, h, w1, b1, w2, b2, precision=precision)


@_rnn_step_op.register_fake
def _rnn_step_fake(x, h, w1, b1, w2, b2, precision="default"):
    torch._check(x.dim() == 2 and h.dim() == 2 and w2.dim() == 2,
                 lambda: "rnnjit::rnn_step takes x (B, I), h (B, H), w2 (O, H)")
    return x.new_empty((x.shape[0], h.shape[1])), x.new_empty((x.shape[0], w2.shape[0]))


def _no_grad_setup_context(ctx, inputs, output):
    # Called only when autograd records the op: some input requires grad with grad mode on.
    names = [n for n, t in zip(("x", "h", "w1", "b1", "w2", "b2"), inputs) if getattr(t, "requires_grad", False)]
    raise Unsupported(_NO_GRAD.format(what=", ".join(names) or "an input"))


def _no_grad_backward(ctx, *grads):
    raise Unsupported(_NO_GRAD.format(what="an input"))


_rnn_step_op.register_autograd(_no_grad_backward, setup_context=_no_grad_setup_context)


def _check_no_grad(x, h, w1, b1, w2, b2):
    if torch.is_grad_enabled():
        names = [n for n, t in zip(("x", "h", "w1", "b1", "w2", "b2"), (x, h, w1, b1, w2, b2)) if t.requires_grad]
        if names:
            raise Unsupported(_NO_GRAD.format(what=", ".join(names)))


def rnn_step(x, h, w1, b1, w2, b2, precision="default"):
    """(h', y) of one step as new tensors, on the current stream of x's device.

    Eagerly this calls the engine directly (no dispatcher in between); under torch.compile it is
    the custom op torch.ops.rnnjit.rnn_step, which Dynamo keeps in the graph."""
    if torch.compiler.is_compiling():
        return torch.ops.rnnjit.rnn_step(x, h, w1, b1, w2, b2, precision)
    if torch.is_grad_enabled() and (x.requires_grad or h.requires_grad or w1.requires_grad or b1.requires_grad
                                    or w2.requires_grad or b2.requires_grad):
        _check_no_grad(x, h, w1, b1, w2, b2)
    return _engine_of(x).rnn_step(x, h, w1, b1, w2, b2, precision=precision)


class RNNCell(nn.Module):
    """A vanilla RNN cell on rnnjit, shaped as KernelBench's level-3 VanillaRNN `Model`: parameters
    `i2h` = Linear(input + hidden, hidden) and `h2o` = Linear(hidden, output), so that model's
    state_dict loads, and the state in the plain attribute `hidden` (batch, hidden_size), carried
    from one forward to the next (None: zeros at the next forward).

    forward(x, initial_hidden=None) -> y: with initial_hidden the step starts from it, else from
    `hidden`; `hidden` becomes h'. Parameters are created with requires_grad=False (inference only).
    """

    def __init__(self, input_size, hidden_size, output_size, *, precision="default", device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.precision = precision
        self.hidden = None
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size, device=device, dtype=dtype)
        self.h2o = nn.Linear(hidden_size, output_size, device=device, dtype=dtype)
        self.requires_grad_(False)

    @classmethod
    def from_module(cls, model, precision="default"):
        """An RNNCell with `model`'s parameters (copied) and state: any module with i2h, h2o Linear
        layers and a `hidden` tensor, as KernelBench's Model."""
        i2h, h2o = model.i2h, model.h2o
        cell = cls(i2h.in_features - i2h.out_features, i2h.out_features, h2o.out_features,
                   precision=precision, device=i2h.weight.device, dtype=i2h.weight.dtype)
        cell.load_state_dict({k: v for k, v in model.state_dict().items() if k.split(".")[0] in ("i2h", "h2o")})
        hidden = getattr(model, "hidden", None)
        cell.hidden = None if hidden is None else hidden.detach().clone()
        return cell

    def reset(self, hidden=None):
        """Sets the state (a (batch, hidden_size) tensor), or None for zeros at the next forward."""
        self.hidden = hidden

    def forward(self, x, initial_hidden=None):
        h = initial_hidden if initial_hidden is not None else self.hidden
        if h is None:
            h = x.new_zeros((x.shape[0], self.hidden_size))
        elif h.device != x.device or h.dtype != x.dtype:
            h = h.to(device=x.device, dtype=x.dtype)
        self.hidden, y = rnn_step(x.contiguous(), h.contiguous(), self.i2h.weight, self.i2h.bias, self.h2o.weight,
                                  self.h2o.bias, self.precision)
        return y

    def extra_repr(self):
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"precision={self.precision!r}")
