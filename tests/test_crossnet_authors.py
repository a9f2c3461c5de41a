"""crossnet ``arch=authors``: the HOFAM authors' generator (github.com/dongzhang89/HOFAM,
model.py and ops.py, read for this test) and the mapping of their TensorFlow checkpoint.

The variable shapes below are written from the authors' code by hand (``ngf`` 64, conv
filters [kh, kw, in, out], conv2d_transpose filters [kh, kw, out, in], layer-norm gamma and
beta per channel), not derived from bgbench's module: a checkpoint of exactly these
variables must fill every tensor of the network, and nothing else may."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bgbench.errors import BadInput
from bgbench.method import build_method
from bgbench.methods.crossnet import conv_same, deconv_same


def _authors_variables() -> dict[str, tuple[int, ...]]:
    v: dict[str, tuple[int, ...]] = {}

    def conv(name, k, cin, cout):
        v[f"generator/{name}/w"], v[f"generator/{name}/biases"] = (k, k, cin, cout), (cout,)

    def deconv(name, k, cout, cin):
        v[f"generator/{name}/w"], v[f"generator/{name}/biases"] = (k, k, cout, cin), (cout,)

    def norm(name, c):
        v[f"generator/{name}/gamma"], v[f"generator/{name}/beta"] = (c,), (c,)

    enc = [(7, 3, 64), (7, 64, 128), (5, 128, 256), (5, 256, 512), (5, 512, 512), (5, 512, 512), (3, 512, 512),
           (3, 512, 1024)]
    for i, (k, cin, cout) in enumerate(enc, 1):
        for kind in ("e", "op"):
            conv(f"g_{kind}{i}_conv", k, cin, cout)
            if i > 1:
                norm(f"g_bn_{kind}{i}", cout)
    conv("fusion0", 3, 2048, 1024)
    # level: (deconv kernel, deconv out, deconv in, fusion's input = e + op channels)
    dec = {1: (3, 512, 1024, 1024), 2: (3, 512, 1024, 1024), 3: (5, 512, 1024, 1024), 4: (5, 512, 1024, 1024),
           5: (5, 256, 1024, 512), 6: (5, 128, 512, 256), 7: (7, 64, 256, 128)}
    for i, (k, cout, cin, fin) in dec.items():
        deconv(f"g_d{i}", k, cout, cin)
        conv(f"g_attention{i}", k, cout, cout)
        norm(f"g_bn_attention{i}", cout)
        norm(f"g_bn_d{i}", cout)
        conv(f"fusion{i}", k, fin, cout)
    deconv("g_d8", 7, 1, 128)
    return v


def test_the_authors_variables_are_exactly_the_networks_tensors():
    """At the paper's size (on the meta device: shapes only), the hand-written variables of
    their code, mapped, are every tensor of ``arch=authors`` with its shape, and nothing else."""
    from bgbench.methods.crossnet import AuthorsCrossNet, tf_names

    shapes = _authors_variables()
    with torch.device("meta"):
        net = AuthorsCrossNet((64, 128, 256, 512, 512, 512, 512, 1024))
        mapped = tf_names({k: torch.empty(s) for k, s in shapes.items()})
    want = {f"net.{k}": tuple(t.shape) for k, t in net.state_dict().items()}
    assert {k: tuple(t.shape) for k, t in mapped.items()} == want
    assert sum(np.prod(s) for s in shapes.values()) == sum(p.numel() for p in net.parameters()) == 173_173_697


def _as_tensorflow(net) -> dict[str, torch.Tensor]:
    """A network's tensors as the authors' checkpoint names and lays them out (the inverse of
    the mapping, written from TensorFlow's conventions): filters [kh, kw, in, out] and, for
    transposed convs, [kh, kw, out, in]; layer norms gamma and beta."""
    out = {}
    for name, mod in net.layers.items():
        if isinstance(mod, torch.nn.GroupNorm):
            out[f"generator/{name}/gamma"], out[f"generator/{name}/beta"] = mod.weight, mod.bias
        else:  # Conv2d [out, in, kh, kw] or ConvTranspose2d [in, out, kh, kw]: both to [kh, kw, ., .] swapped
            out[f"generator/{name}/w"] = mod.weight.permute(2, 3, 1, 0)
            out[f"generator/{name}/biases"] = mod.bias
    return {k: v.detach().clone() for k, v in out.items()}


def test_a_converted_checkpoint_loads_by_name_and_gives_the_same_network(tmp_path):
    source = build_method("crossnet", config="smoke", arch="authors", seed=7)
    ckpt = _as_tensorflow(source.net)
    # what tf.train.load_checkpoint also lists: optimiser slots and counters, ignored
    ckpt.update({"generator/g_e1_conv/w/Adam": torch.zeros(1), "global_step": torch.tensor(63999),
                 "beta1_power": torch.tensor(0.9)})
    path = tmp_path / "hofam.pt"
    torch.save(ckpt, path)
    m = build_method("crossnet", config="smoke", arch="authors", weights=str(path))  # another seed's init replaced
    n = sum(1 for _ in m.net.state_dict())
    assert m.model_weights_loaded == {"loaded": n, "total": n, "mapped_from": "HOFAM authors' TensorFlow checkpoint"}
    source.net.eval(), m.net.eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(m.net(x, x.flip(1)), source.net(x, x.flip(1)))
    # the paper's architecture has other layers: refused, with the fix
    with pytest.raises(BadInput, match="arch=authors"):
        build_method("crossnet", config="smoke", weights=str(path))
    # a checkpoint lacking a layer is refused, naming what is missing
    del ckpt["generator/fusion3/w"]
    torch.save(ckpt, path)
    with pytest.raises(BadInput, match="fusion3"):
        build_method("crossnet", config="smoke", arch="authors", weights=str(path))


def test_same_padding_samples_as_tensorflow_does():
    """Stride 2, kernel 7 on 8 pixels: TF pads 2 before and 3 after, so output j is centred on
    input 2j + 1 (PyTorch's symmetric padding 3 would centre it on 2j)."""
    conv = torch.nn.Conv2d(1, 1, 7, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 3, 3] = 1.0  # the centre tap
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
    y = conv_same(conv, x)
    assert y.shape == (1, 1, 4, 4)
    assert torch.equal(y[0, 0], x[0, 0, 1::2, 1::2])


@pytest.mark.parametrize("k", [3, 5, 7])
def test_same_transposed_convolution_is_the_adjoint_of_same_convolution(k):
    """tf.nn.conv2d_transpose(SAME) is the gradient of conv2d(SAME): <conv(x), y> = <deconv(y), x>
    with one filter."""
    g = torch.Generator().manual_seed(k)
    conv = torch.nn.Conv2d(3, 5, k, stride=2, bias=False).double()
    deconv = torch.nn.ConvTranspose2d(5, 3, k, stride=2, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(5, 3, k, k, generator=g))
        deconv.weight.copy_(conv.weight)  # [out, in, kh, kw] of the conv = [in, out, kh, kw] of its transpose
    x = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 8, 8, generator=g, dtype=torch.float64)
    lhs = (conv_same(conv, x) * y).sum()
    rhs = (deconv_same(deconv, y) * x).sum()
    assert deconv_same(deconv, y).shape == x.shape
    assert torch.allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("cfg", ["smoke", "cpu"])
def test_the_authors_network_runs_at_every_config_and_refuses_sizes_it_cannot_mirror(cfg):
    m = build_method("crossnet", config=cfg, arch="authors")
    s = int(m.p["size"])
    m.net.eval()
    x = torch.rand(2, 3, s, s)
    assert m.net(x, x).shape == (2, 1, s, s)
    with pytest.raises(BadInput, match="crossnet.size"):
        build_method("crossnet", config=cfg, size=s + 8)
    with pytest.raises(BadInput, match="crossnet.channels"):
        build_method("crossnet", config=cfg, channels=(8,) * 9, size=512)
