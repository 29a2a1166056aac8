"""The package on a GPU: results against a float64 reference, the checks the engine makes, other
frameworks' arrays, the cache, the custom op under torch.compile and in a CUDA graph, RNNCell
against KernelBench's Model. Skipped, with the reason, without a CUDA GPU."""

import pytest

from conftest import gpu_skip_reason, load_example

_reason = gpu_skip_reason()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

import torch  # noqa: E402

import rnnjit  # noqa: E402
import rnnjit.torch  # noqa: E402

bound = rnnjit.error_bound  # the relative error each precision stays within
SHAPES = [(8, 1024, 256, 128), (1, 5, 7, 3), (3, 37, 45, 29), (17, 100, 33, 65), (64, 256, 128, 96)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = rnnjit.Engine(cache=str(tmp_path_factory.mktemp("cache") / "cache.sqlite"))
    yield e
    e.close()


def operands(B, I, H, O, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    i2h, h2o = torch.nn.Linear(I + H, H), torch.nn.Linear(H, O)
    w = [t.detach().cuda().contiguous() for t in (i2h.weight, i2h.bias, h2o.weight, h2o.bias)]
    x = torch.rand(B, I, device="cuda", generator=g) * 2 - 1
    h = torch.rand(B, H, device="cuda", generator=g) * 2 - 1
    return [x, h] + w


def reference(x, h, w1, b1, w2, b2):
    d = [t.double() for t in (x, h, w1, b1, w2, b2)]
    hn = torch.tanh(torch.cat(d[:2], 1) @ d[2].T + d[3])
    return hn, hn @ d[4].T + d[5]


def rel_err(out, ref):
    return ((out.double() - ref).norm() / ref.norm()).item()


def poisoned(*shape, dtype=torch.float32):
    """NaN outputs: an element never written fails rel_err (the caching allocator may hand back a
    block that holds an earlier call's right answer)."""
    return torch.full(shape, float("nan"), device="cuda", dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("precision", ["tf32", "fp32"])
def test_a_step_matches_the_float64_reference(engine, shape, precision):
    B, _, H, O = shape
    ops = operands(*shape)
    h_out, y = engine.rnn_step(*ops, h_out=poisoned(B, H), y=poisoned(B, O), precision=precision)
    torch.cuda.synchronize()
    ref_h, ref_y = reference(*ops)
    assert h_out.shape == ref_h.shape and y.shape == ref_y.shape and y.device == ops[0].device
    assert rel_err(h_out, ref_h) < bound(precision) and rel_err(y, ref_y) < bound(precision)


def test_given_outputs_in_place_state_and_a_side_stream(engine):
    x, h, w1, b1, w2, b2 = operands(4, 64, 32, 16)
    ref_h, ref_y = reference(x, h, w1, b1, w2, b2)
    y = torch.full((4, 16), float("nan"), device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # the default: the current stream, here s
        out = engine.rnn_step(x, h, w1, b1, w2, b2, h_out=h, y=y, precision="fp32")
    s.synchronize()
    assert out[0] is h and out[1] is y
    assert rel_err(h, ref_h) < bound("fp32") and rel_err(y, ref_y) < bound("fp32")


def test_the_engine_rejects_what_python_cannot_see(engine):
    x, h, w1, b1, w2, b2 = operands(4, 64, 32, 16)
    with pytest.raises(rnnjit.InvalidArgument, match="x is not device memory"):
        engine.rnn_step(x.cpu(), h, w1, b1, w2, b2)
    y = torch.empty(4, 16, device="cuda")
    with pytest.raises(rnnjit.InvalidArgument, match="y overlaps"):
        engine.rnn_step(x, h, w1, b1, w2, b2, h_out=h, y=h.view(-1)[:64].view(4, 16))
    # bf16 tensors take bf16 products only, and bf16 products need bf16 tensors.
    bf = [t.bfloat16() for t in (x, h, w1, b1, w2, b2)]
    y_bf = torch.full((4, 16), float("nan"), device="cuda", dtype=torch.bfloat16)
    for precision in ("tf32", "fp32"):
        with pytest.raises(rnnjit.Unsupported):
            engine.rnn_step(*bf, y=y_bf, precision=precision)
    with pytest.raises(rnnjit.Unsupported):
        engine.rnn_step(x, h, w1, b1, w2, b2, y=y, precision="bf16")
    torch.cuda.synchronize()
    assert y_bf.isnan().all()  # nothing written


def test_a_step_without_pointer_checks_still_checks_devices():
    with rnnjit.Engine(cache="off", check_pointers=False) as e:
        x, h, w1, b1, w2, b2 = operands(4, 64, 32, 16)
        with pytest.raises(rnnjit.InvalidArgument, match="h is on cpu but this engine runs on cuda:0"):
            e.rnn_step(x, h.cpu(), w1, b1, w2, b2)
        h_out, y = e.rnn_step(x, h, w1, b1, w2, b2)
        assert rel_err(y, reference(x, h, w1, b1, w2, b2)[1]) < bound("tf32")


class CudaArrayView:
    """A torch tensor seen only through __cuda_array_interface__ (as CuPy or Numba arrays are)."""

    def __init__(self, t):
        self.t = t
        self.__cuda_array_interface__ = t.__cuda_array_interface__


class DLPackView:
    """A torch tensor seen only through DLPack (as a JAX array is)."""

    def __init__(self, t):
        self.t = t

    def __dlpack__(self, stream=None):
        return self.t.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()


@pytest.mark.parametrize("view", [CudaArrayView, DLPackView])
def test_arrays_of_other_frameworks(engine, view):
    ops = operands(5, 48, 40, 24)
    h_out, y = torch.empty(5, 40, device="cuda"), torch.empty(5, 24, device="cuda")
    got = engine.rnn_step(*map(view, ops), h_out=view(h_out), y=view(y), precision="fp32")
    torch.cuda.synchronize()
    assert got[0].t is h_out and got[1].t is y
    ref_h, ref_y = reference(*ops)
    assert rel_err(h_out, ref_h) < bound("fp32") and rel_err(y, ref_y) < bound("fp32")
    with pytest.raises(rnnjit.InvalidArgument, match="h_out and y are required"):
        engine.rnn_step(*map(view, ops))


def test_cupy_arrays_when_cupy_is_installed(engine):
    cp = pytest.importorskip("cupy")
    ops = [cp.asarray(t) for t in operands(3, 20, 12, 6)]
    h_out, y = cp.empty((3, 12), cp.float32), cp.empty((3, 6), cp.float32)
    engine.rnn_step(*ops, h_out=h_out, y=y, precision="fp32")
    ref_h, ref_y = reference(*[torch.as_tensor(a, device="cuda") for a in ops])
    assert rel_err(torch.as_tensor(y, device="cuda"), ref_y) < bound("fp32")


# --- bf16 tensors ------------------------------------------------------------------------------

BF16_SHAPES = SHAPES + [(33, 17, 129, 1000), (3, 1000, 129, 4097), (257, 5, 17, 129)]


@pytest.mark.parametrize("shape", BF16_SHAPES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("precision", ["bf16", "default"])
def test_a_bf16_step_matches_the_float64_reference_of_its_bf16_values(engine, shape, precision):
    B, _, H, O = shape
    ops = [t.bfloat16() for t in operands(*shape)]
    h_out, y = engine.rnn_step(*ops, h_out=poisoned(B, H, dtype=torch.bfloat16), y=poisoned(B, O, dtype=torch.bfloat16),
                               precision=precision)
    torch.cuda.synchronize()
    assert h_out.dtype == y.dtype == torch.bfloat16
    ref_h, ref_y = reference(*ops)  # the bf16 values, exactly, in float64
    assert rel_err(h_out, ref_h) < bound("bf16") and rel_err(y, ref_y) < bound("bf16")


def test_a_bf16_step_into_given_outputs_and_through_dlpack(engine):
    ops = [t.bfloat16() for t in operands(5, 48, 40, 24, seed=3)]
    ref_h, ref_y = reference(*ops)
    h_out, y = (torch.full(s, float("nan"), device="cuda", dtype=torch.bfloat16) for s in ((5, 40), (5, 24)))
    got = engine.rnn_step(*map(DLPackView, ops), h_out=DLPackView(h_out), y=DLPackView(y), precision="bf16")
    torch.cuda.synchronize()
    assert got[0].t is h_out and got[1].t is y
    assert rel_err(h_out, ref_h) < bound("bf16") and rel_err(y, ref_y) < bound("bf16")
    x, h = ops[:2]
    out = engine.rnn_step(x, h, *ops[2:], h_out=h, y=y, precision="bf16")  # h_out aliasing h
    torch.cuda.synchronize()
    assert out[0] is h and out[1] is y
    assert rel_err(h, ref_h) < bound("bf16")


def test_a_bf16_sequence_matches_the_float64_recurrence_of_its_stored_states(engine):
    T, B, I, H, O = 6, 3, 37, 45, 29
    x0, h0, w1, b1, w2, b2 = (t.bfloat16() for t in operands(B, I, H, O, seed=6))
    x = (torch.rand(T, B, I, device="cuda") * 2 - 1).bfloat16()
    y = torch.full((T, B, O), float("nan"), device="cuda", dtype=torch.bfloat16)
    out = engine.rnn_sequence(x, h0, w1, b1, w2, b2, y=y, h_all=True, precision="bf16")
    assert out[0] is y and out[1].dtype == torch.bfloat16 and out[2].shape == (T, B, H)
    # Each state rounded to bf16 as stored, the next step and y_t reading it so.
    h, ys, hs = h0.double(), [], []
    for t in range(T):
        h = torch.tanh(torch.cat([x[t].double(), h], 1) @ w1.double().T + b1.double()).bfloat16().double()
        ys.append(h @ w2.double().T + b2.double())
        hs.append(h)
    assert rel_err(y, torch.stack(ys)) < bound("bf16")
    assert rel_err(out[2], torch.stack(hs)) < bound("bf16")
    assert torch.equal(out[1], out[2][-1])


def test_a_bf16_problem_is_tuned_into_an_entry_of_its_own(engine):
    f32 = engine.tune(2, 96, 64, 24, precision="tf32")
    bf16 = engine.tune(2, 96, 64, 24, precision="bf16", dtype="bf16")
    assert (f32.dtype, f32.precision) == ("f32", "tf32") and (bf16.dtype, bf16.precision) == ("bf16", "bf16")
    assert f32.shape == bf16.shape == (2, 96, 64, 24) and f32 in engine.entries() and bf16 in engine.entries()


def test_tune_the_cache_path_and_the_entries(engine):
    assert engine.cache_path.endswith("cache.sqlite")
    assert engine.device_name and engine.arch.startswith("sm_") and engine.device_name in engine.gpu_key
    entry = engine.tune(2, 96, 64, 32, precision="fp32")
    assert entry is not None and entry.shape == (2, 96, 64, 32) and entry.precision == "fp32"
    assert entry.winner in [c.config for c in entry.candidates] and entry.winner_us > 0 and not entry.stale
    assert entry in engine.entries()
    assert entry in rnnjit.cache_entries(engine.cache_path, gpu=engine.gpu_key)
    with rnnjit.Engine(cache="off") as memory:
        assert memory.cache_path == ":memory:" and memory.entries() == []


@pytest.mark.parametrize("precision", ["tf32", "fp32"])
def test_a_sequence_matches_the_float64_recurrence(engine, precision):
    T, B, I, H, O = 7, 3, 37, 45, 29
    x0, h0, w1, b1, w2, b2 = operands(B, I, H, O, seed=5)
    x = torch.rand(T, B, I, device="cuda") * 2 - 1
    y, h_n, h_all = engine.rnn_sequence(x, h0, w1, b1, w2, b2, y=poisoned(T, B, O), h_n=poisoned(B, H),
                                        h_all=poisoned(T, B, H), precision=precision)
    assert y.shape == (T, B, O) and h_n.shape == (B, H) and h_all.shape == (T, B, H)
    h, ys, hs = h0, [], []
    for t in range(T):
        h, y_t = reference(x[t], h, w1, b1, w2, b2)
        ys.append(y_t)
        hs.append(h)
    assert rel_err(y, torch.stack(ys)) < bound(precision)
    assert rel_err(h_all, torch.stack(hs)) < bound(precision)
    assert torch.equal(h_n, h_all[-1])
    # h_n replacing h0, outputs given: the same bits.
    h_again, y_again = h0.clone(), poisoned(T, B, O)
    out = engine.rnn_sequence(x, h_again, w1, b1, w2, b2, y=y_again, h_n=h_again, precision=precision)
    assert out[0] is y_again and out[1] is h_again and len(out) == 2
    assert torch.equal(y_again, y) and torch.equal(h_again, h_n)
    with pytest.raises(rnnjit.InvalidArgument, match="a sequence's x is"):
        engine.rnn_sequence(x[0], h0, w1, b1, w2, b2)


def test_background_tuning_runs_the_generic_plan_then_the_winner():
    with rnnjit.Engine(cache="off", system_cache="off", tuning="background") as e:
        ops = operands(8, 1024, 256, 128)
        ref_h, ref_y = reference(*ops)
        assert e.plan(8, 1024, 256, 128) == ("none", "")
        first = None
        for _ in range(100000):  # steady calls until the winner is in place (about a second)
            h_out, y = e.rnn_step(*ops)
            torch.cuda.synchronize()
            assert rel_err(h_out, ref_h) < bound("tf32") and rel_err(y, ref_y) < bound("tf32")
            state, config = e.plan(8, 1024, 256, 128)
            assert state in ("tuning", "tuned") and config
            first = first or (state, config)
            if state == "tuned":
                break
        assert state == "tuned"
        assert first == ("tuning", "i2h_generic.h2o_generic")  # built with the library: no NVRTC
        assert config != "i2h_generic.h2o_generic"


# --- PyTorch: the custom op and RNNCell ----------------------------------------------------------

def test_the_op_passes_opcheck():
    ops = operands(6, 40, 24, 8)
    torch.library.opcheck(torch.ops.rnnjit.rnn_step.default, tuple(ops) + ("fp32",),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_the_op_compiles_without_a_graph_break():
    torch._dynamo.reset()
    cell = rnnjit.torch.RNNCell(40, 24, 8).cuda()
    x = torch.randn(6, 40, device="cuda")

    def f(x, h):
        h2, y = rnnjit.torch.rnn_step(x, h, cell.i2h.weight, cell.i2h.bias, cell.h2o.weight, cell.h2o.bias)
        return torch.relu(y) + 1, h2

    h = torch.randn(6, 24, device="cuda")
    explanation = torch._dynamo.explain(f)(x, h)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation
    compiled = torch.compile(f, fullgraph=True)
    got, expected = compiled(x, h), f(x, h)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)

    torch._dynamo.reset()
    compiled_cell = torch.compile(cell, fullgraph=True)
    y = compiled_cell(x)
    assert y.shape == (6, 8) and cell.hidden.shape == (6, 24)


def test_the_op_in_a_cuda_graph():
    cell = rnnjit.torch.RNNCell(64, 32, 16).cuda()
    x = torch.randn(4, 64, device="cuda")
    h0 = torch.randn(4, 32, device="cuda")
    with torch.no_grad():
        cell(x, h0)  # the first call of a shape tunes: never inside a capture
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            cell(x, h0)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            y_static = cell(x, h0)
        h_static = cell.hidden
        x.copy_(torch.randn(4, 64, device="cuda"))
        g.replay()
        torch.cuda.synchronize()
        ref_h, ref_y = reference(x, h0, cell.i2h.weight, cell.i2h.bias, cell.h2o.weight, cell.h2o.bias)
        assert rel_err(y_static, ref_y) < bound("tf32") and rel_err(h_static, ref_h) < bound("tf32")


def test_reduce_overhead_compile_runs_the_op_in_cuda_graphs():
    torch._dynamo.reset()
    cell = rnnjit.torch.RNNCell(64, 32, 16).cuda()
    x = torch.randn(4, 64, device="cuda")
    h0 = torch.randn(4, 32, device="cuda")
    eager = cell(x, h0).clone()
    f = torch.compile(lambda x, h: cell(x, h), mode="reduce-overhead", fullgraph=True)
    for _ in range(3):
        y = f(x, h0)
    torch.testing.assert_close(y, eager, rtol=2e-3, atol=1e-4)


def test_autograd_through_rnnjit_is_a_clear_error():
    cell = rnnjit.torch.RNNCell(16, 8, 4).cuda()
    x = torch.randn(2, 16, device="cuda", requires_grad=True)
    with pytest.raises(rnnjit.Unsupported, match="inference only.*x requires grad"):
        cell(x)
    cell.i2h.weight.requires_grad_(True)
    with pytest.raises(rnnjit.Unsupported, match="w1 requires grad"):
        cell(x.detach())
    with pytest.raises(rnnjit.Unsupported, match="inference only"):
        torch.ops.rnnjit.rnn_step(x, torch.zeros(2, 8, device="cuda"), cell.i2h.weight, cell.i2h.bias,
                                  cell.h2o.weight, cell.h2o.bias)
    with torch.no_grad():
        assert cell(x).shape == (2, 4)
    with torch.inference_mode():
        assert cell(x.detach()).shape == (2, 4)


def test_rnncell_matches_kernelbenchs_model_and_loads_its_state_dict():
    kb = load_example()
    kb.set_shape("kb-v0")
    kb.set_seed(42)
    model = kb.Model(*kb.get_init_inputs()).cuda()
    kb.set_seed(42)
    model_new = kb.ModelNew(*kb.get_init_inputs()).cuda()
    passed, worst = kb.check(model, model_new, trials=5)
    assert passed == 5, worst

    # A cell of the same sizes takes the model's state_dict (strict: the same names) and state.
    cell = rnnjit.torch.RNNCell(kb.input_size, kb.hidden_size, kb.output_size, precision="fp32").cuda()
    cell.load_state_dict(model.state_dict())
    cell.reset(model.hidden.clone())
    twin = rnnjit.torch.RNNCell.from_module(model, precision="fp32")
    with torch.no_grad():
        for _ in range(4):
            x = torch.randn(kb.batch_size, kb.input_size, device="cuda")
            y_ref = model(x)
            y, y_twin = cell(x), twin(x)
            assert rel_err(y, y_ref.double()) < bound("fp32") and torch.equal(y, y_twin)
            assert rel_err(cell.hidden, model.hidden.double()) < bound("fp32")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs (issue 25)")
def test_the_package_uses_the_engine_of_the_tensors_device():
    results = {}
    for device in (0, 1):
        ops = [t.to(f"cuda:{device}") for t in operands(5, 7, 33, 3, seed=7)]
        ref_h, ref_y = reference(*ops)
        with torch.cuda.device(1 - device):  # the current device is the other one
            h, y = rnnjit.torch.rnn_step(*ops, precision="fp32")
            cell = rnnjit.torch.RNNCell(7, 33, 3, precision="fp32").to(f"cuda:{device}")
            cell_y = cell(ops[0])
        assert h.device == y.device == cell_y.device == torch.device(f"cuda:{device}")
        assert rel_err(h, ref_h) < bound("fp32") and rel_err(y, ref_y) < bound("fp32")
        assert rnnjit.torch.engine(device).device == device
        results[device] = y.cpu()
    if rnnjit.torch.engine(0).gpu_key == rnnjit.torch.engine(1).gpu_key:
        assert torch.equal(results[0], results[1])  # one GPU model, one tuning, the same bits
    # A tensor of device 1 with weights of device 0 is refused, not copied.
    ops = operands(5, 7, 33, 3, seed=7)
    with pytest.raises(rnnjit.InvalidArgument, match="cuda:1"):
        rnnjit.torch.rnn_step(ops[0].to("cuda:1"), ops[1].to("cuda:1"), *ops[2:])
