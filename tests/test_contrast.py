"""The local contrast channel (``--model-arg contrast=W``; MSHNet, MTUNet and Light-SGMTLM): what
it computes, a model without it widened into one with it (``--init``) computes what it did, and
the channel exports to ONNX and runs the same in onnxruntime."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeirst.checkpoint import meta_for  # noqa: E402
from edgeirst.errors import EdgeirstWarning  # noqa: E402
from edgeirst.models import create_model  # noqa: E402
from edgeirst.models.layers.contrast import LocalContrast  # noqa: E402
from edgeirst.train.trainer import _init_from  # noqa: E402


def _sky(level: float, excess: float, noise: float = 0.004, seed: int = 0) -> torch.Tensor:
    """A flat sky with a 3x3 target ``excess`` above it (grey [0, 1] units)."""
    rng = np.random.default_rng(seed)
    x = np.full((64, 64), level, np.float32) + rng.normal(0, noise, (64, 64)).astype(np.float32)
    x[30:33, 30:33] += excess
    return torch.from_numpy(x)[None, None]


def test_faint_and_strong_targets_look_alike():
    lc = LocalContrast(31, 0.01)
    faint, strong = lc(_sky(0.3, 0.03)), lc(_sky(0.3, 0.3))
    # ten times the grey levels, about three times the contrast value (the floor keeps the faint one
    # from being stretched further); the sky's noise stays far below either
    assert 1.0 < float(strong[0, 0, 31, 31] / faint[0, 0, 31, 31]) < 3.5
    assert float(faint[0, 0, 31, 31]) > 5 * float(faint[0, 0, :20, :20].abs().mean())
    # an offset does not change it; a gain hardly, where the spread is well above the floor
    assert torch.allclose(lc(_sky(0.3, 0.3)), lc(_sky(0.3, 0.3) + 0.2), atol=1e-3)
    halved = lc(_sky(0.3, 0.3) * 0.5)[0, 0, 31, 31]
    assert abs(float(halved / strong[0, 0, 31, 31]) - 1) < 0.2  # 0.13: the floor


def test_window_and_floor_are_checked():
    with pytest.raises(ValueError, match="odd"):
        LocalContrast(8)
    with pytest.raises(ValueError, match="floor"):
        LocalContrast(31, 0.0)
    # through the model (`--model-arg contrast=8`): one EdgeirstError, which the CLI prints as one line
    from edgeirst.errors import EdgeirstError
    for bad in (8, -1, "abc", 0.5):
        with pytest.raises(EdgeirstError, match="bad arguments for model 'mshnet': local contrast window"):
            create_model("mshnet", width=0.25, contrast=bad)


def test_init_widens_the_stem_and_keeps_the_function(tmp_path):
    plain = create_model("mshnet", width=0.25).eval()
    ckpt = {"meta": meta_for("mshnet", plain, kwargs={"width": 0.25}, input_size=(64, 64), mean=(0.4,), std=(0.2,)).to_dict(),
            "state_dict": plain.state_dict()}
    widened = create_model("mshnet", width=0.25, contrast=15).eval()
    assert widened.stem.weight.shape[1] == 2
    path = tmp_path / "plain.pt"
    torch.save(ckpt, path)
    n, _, norm = _init_from(widened, "mshnet", {"width": 0.25, "contrast": 15}, str(path))
    assert n == len(plain.state_dict()) and norm == (0.4, 0.2)
    assert float(widened.stem.weight.detach()[:, 1].abs().max()) == 0.0
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        assert torch.allclose(widened(x)["seg_logit"], plain(x)["seg_logit"], atol=1e-4)


@pytest.mark.parametrize("name, kwargs", [("mtunet-siwd", {"width": 0.25}), ("light-sgmtlm-tiny", {})])
def test_the_other_families_take_the_channel_and_init_keeps_their_function(tmp_path, name, kwargs):
    """The card's other models get the default's recipe: every convolution that sees the input
    (SIWD's five branches in Light-SGMTLM) is widened with zeros, and the outputs stay."""
    torch.manual_seed(0)
    plain = create_model(name, **kwargs).eval()
    ckpt = {"meta": meta_for(name, plain, kwargs=kwargs, input_size=(64, 64), mean=(0.4,), std=(0.2,)).to_dict(),
            "state_dict": plain.state_dict()}
    torch.save(ckpt, tmp_path / "plain.pt")
    widened = create_model(name, contrast=15, **kwargs).eval()
    first = [m for m in widened.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 2]
    assert first and all(m.groups == 1 for m in first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all of it copied: nothing left as built
        n, _, norm = _init_from(widened, name, {**kwargs, "contrast": 15}, str(tmp_path / "plain.pt"))
    assert n == len(plain.state_dict()) and norm == (0.4, 0.2)
    assert all(float(m.weight.detach()[:, 1].abs().max()) == 0.0 for m in first)
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        want, got = plain(x), widened(x)
    assert set(got) == set(want)
    for key in want:
        assert torch.allclose(got[key], want[key], atol=1e-4), key


def test_contrast_channel_exports_and_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from edgeirst.export import export_onnx

    model = create_model("mshnet", width=0.25, contrast=15).eval()
    with torch.no_grad():
        model.stem.weight[:, 1] = 0.5  # make the channel count
    meta = meta_for("mshnet", model, kwargs={"width": 0.25, "contrast": 15}, input_size=(64, 64), mean=(0.4,), std=(0.2,))
    path = export_onnx(model, meta, tmp_path / "c.onnx", dynamic=True)
    x = torch.randn(1, 1, 96, 128)
    with torch.no_grad():
        want = model(x)["seg_logit"].numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["seg_logit"], {"images": x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-3


def test_init_widens_only_a_network_that_differs_in_its_input(tmp_path):
    """Another width is not a widened input: its heads (one output, more inputs) are left as built."""
    narrow = create_model("mshnet", width=0.25).eval()
    ckpt = {"meta": meta_for("mshnet", narrow, kwargs={"width": 0.25}, input_size=(64, 64), mean=(0.4,), std=(0.2,)).to_dict(),
            "state_dict": narrow.state_dict()}
    torch.save(ckpt, tmp_path / "narrow.pt")
    wide = create_model("mshnet", width=0.5)
    before = wide.heads[0].weight.detach().clone()
    with pytest.warns(EdgeirstWarning, match=r"tensors left as built \(.*\): it was built with width=0.25; pass the same"):
        _init_from(wide, "mshnet", {"width": 0.5}, str(tmp_path / "narrow.pt"))
    assert torch.equal(wide.heads[0].weight.detach(), before)


def test_init_from_the_contrast_default_without_the_channel_says_what_it_left(tmp_path):
    """`train mshnet --width 0.5 --init default` without `--model-arg contrast=31`: the default's stem
    takes two channels, this one one; the user is told which tensor stays random and why."""
    from edgeirst.checkpoint import read_checkpoint
    from edgeirst.weights import shipped_model

    src = read_checkpoint(shipped_model("default", "pt"))["meta"]["kwargs"]
    if "contrast" not in src:
        pytest.skip("the shipped default has no contrast channel")
    plain = create_model("mshnet", width=src["width"])
    with pytest.warns(EdgeirstWarning, match=rf"1 of \d+ tensors left as built \(stem.weight\): it was built with "
                                             rf"contrast={src['contrast']}; pass the same --width / --model-arg"):
        n, _, _ = _init_from(plain, "mshnet", {"width": src["width"]}, "default")
    assert n == len(plain.state_dict()) - 1
    same = create_model("mshnet", **src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _init_from(same, "mshnet", dict(src), "default")[0] == len(same.state_dict())
