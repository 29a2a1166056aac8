"""rnnjit.torch's PyTorch side without a GPU: the custom op's schema, fake implementation, autograd
guard and torch.compile tracing, and RNNCell against KernelBench's Model, with the engine replaced
by a stand-in that computes the step with torch on the CPU (test_gpu.py runs the real one)."""

import pytest

torch = pytest.importorskip("torch")

import rnnjit  # noqa: E402
import rnnjit.torch  # noqa: E402

from conftest import load_example  # noqa: E402


class CpuEngine:
    """What rnnjit.torch needs of an Engine, computed by torch (float64 inside)."""

    def __init__(self):
        self.calls = 0

    def rnn_step(self, x, h, w1, b1, w2, b2, *, h_out=None, y=None, precision="default", stream=None):
        self.calls += 1
        d = [t.double() for t in (x, h, w1, b1, w2, b2)]
        hn = torch.tanh(torch.cat(d[:2], 1) @ d[2].T + d[3])
        return hn.to(x.dtype), (hn @ d[4].T + d[5]).to(x.dtype)


@pytest.fixture
def cpu_engine(monkeypatch):
    e = CpuEngine()
    monkeypatch.setattr(rnnjit.torch, "_engine_of", lambda x: e)
    return e


def operands(B=3, I=6, H=5, O=4):
    return [torch.randn(*s) for s in ((B, I), (B, H), (H, I + H), (H,), (O, H), (O,))]


def test_the_op_is_registered_with_its_schema():
    schema = str(torch.ops.rnnjit.rnn_step.default._schema)
    assert schema.startswith("rnnjit::rnn_step(Tensor x, Tensor h, Tensor w1, Tensor b1, Tensor w2, Tensor b2, "
                             "str precision=\"default\") -> (Tensor, Tensor)"), schema


def test_opcheck(cpu_engine):
    torch.library.opcheck(torch.ops.rnnjit.rnn_step.default, tuple(operands()) + ("fp32",),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_the_fake_implementation_gives_the_output_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        h2, y = torch.ops.rnnjit.rnn_step(*[torch.empty(s) for s in ((7, 9), (7, 4), (4, 13), (4,), (2, 4), (2,))])
    assert h2.shape == (7, 4) and y.shape == (7, 2)


def test_torch_compile_traces_through_without_a_graph_break(cpu_engine):
    torch._dynamo.reset()
    x, h, w1, b1, w2, b2 = operands()

    def f(x, h):
        h2, y = rnnjit.torch.rnn_step(x, h, w1, b1, w2, b2)
        return torch.relu(y) + 1, h2

    explanation = torch._dynamo.explain(f)(x, h)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    before = cpu_engine.calls
    torch.testing.assert_close(compiled(x, h), f(x, h))
    assert cpu_engine.calls > before  # the op ran inside the compiled graph

    torch._dynamo.reset()
    cell = rnnjit.torch.RNNCell(6, 5, 4)
    compiled_cell = torch.compile(cell, backend="aot_eager", fullgraph=True)
    y1 = compiled_cell(x)
    h1 = cell.hidden
    y2 = compiled_cell(x)  # the state carried, as in eager
    ref = rnnjit.torch.RNNCell(6, 5, 4)
    ref.load_state_dict(cell.state_dict())
    torch.testing.assert_close(ref(x), y1)
    torch.testing.assert_close(ref(x), y2)
    assert h1.shape == (3, 5) and cell.hidden is not h1


def test_autograd_through_the_op_is_a_clear_error(cpu_engine):
    x, h, w1, b1, w2, b2 = operands()
    x.requires_grad_(True)
    with pytest.raises(rnnjit.Unsupported, match=r"inference only.*x requires grad while grad mode is on"):
        rnnjit.torch.rnn_step(x, h, w1, b1, w2, b2)
    with pytest.raises(rnnjit.Unsupported, match=r"inference only.*x requires grad"):
        torch.ops.rnnjit.rnn_step(x, h, w1, b1, w2, b2)  # the op itself, through its autograd kernel
    with torch.no_grad():
        rnnjit.torch.rnn_step(x, h, w1, b1, w2, b2)
        torch.ops.rnnjit.rnn_step(x, h, w1, b1, w2, b2)
    with torch.inference_mode():
        rnnjit.torch.rnn_step(x.detach(), h, w1, b1, w2, b2)


def test_rnncell_is_inference_only_but_runs_in_grad_mode(cpu_engine):
    cell = rnnjit.torch.RNNCell(6, 5, 4)
    assert not any(p.requires_grad for p in cell.parameters())
    assert cell(torch.randn(3, 6)).shape == (3, 4)  # grad mode on, nothing requires grad
    cell.h2o.bias.requires_grad_(True)
    with pytest.raises(rnnjit.Unsupported, match="b2 requires grad"):
        cell(torch.randn(3, 6))


def test_modelnew_matches_kernelbenchs_model_from_the_same_seed(cpu_engine):
    kb = load_example()
    kb.set_shape("kb-v0")
    for initial_hidden in (False, True):
        kb.set_seed(42)
        model = kb.Model(*kb.get_init_inputs())
        kb.set_seed(42)
        model_new = kb.ModelNew(*kb.get_init_inputs())
        assert set(model_new.state_dict()) == set(model.state_dict()) == {"i2h.weight", "i2h.bias", "h2o.weight",
                                                                          "h2o.bias"}
        torch.testing.assert_close(model_new.state_dict(), model.state_dict(), rtol=0, atol=0)
        torch.testing.assert_close(model_new.hidden, model.hidden, rtol=0, atol=0)
        with torch.no_grad():
            for trial in range(3):
                x = torch.randn(kb.batch_size, kb.input_size)
                h0 = torch.rand(kb.batch_size, kb.hidden_size) if initial_hidden else None
                torch.testing.assert_close(model_new(x, h0), model(x, h0), rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(model_new.hidden, model.hidden, rtol=1e-4, atol=1e-5)


def test_rnncell_loads_the_models_state_dict_and_state(cpu_engine):
    kb = load_example()
    kb.set_shape("kb-v0")
    model = kb.Model(*kb.get_init_inputs())
    cell = rnnjit.torch.RNNCell(kb.input_size, kb.hidden_size, kb.output_size)
    cell.load_state_dict(model.state_dict())  # strict: the same names and shapes
    twin = rnnjit.torch.RNNCell.from_module(model, precision="fp32")
    assert twin.precision == "fp32" and twin.hidden_size == kb.hidden_size and twin.input_size == kb.input_size
    torch.testing.assert_close(twin.hidden, model.hidden, rtol=0, atol=0)
    x = torch.randn(kb.batch_size, kb.input_size)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-4, atol=1e-5)
    cell.reset()
    assert cell.hidden is None and cell(x).shape == (kb.batch_size, kb.output_size)
    assert "input_size=1024, hidden_size=256, output_size=128, precision='default'" in repr(cell)
