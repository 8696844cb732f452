"""The fast CPU path: which precision and memory format ``precision="auto"`` picks, per device and model."""
import pytest
import torch

from clothparse_lib.data.loaders import training_dataloaders
from clothparse_lib.data.prepared import prepare_dataset
from clothparse_lib.models import build_model
from clothparse_lib.profiles import TrainSettings, get_profile
from clothparse_lib.training import precision
from clothparse_lib.training.callbacks import DeviceMixedPrecision
from clothparse_lib.training.loop import make_learner


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-bf16"])
def native(request, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: request.param)
    return request.param


def test_auto_is_bf16_on_a_cpu_with_native_bfloat16_except_where_slower(native):
    fast = "bf16" if native else "fp32"
    assert precision.resolve_precision("auto", "cpu", "extended") == fast
    assert precision.resolve_precision("auto", None) == fast  # no device: the CPU
    assert precision.resolve_precision("auto", "cpu", "deeplabv3plus") == "fp32"  # measured slower in bf16
    assert precision.resolve_precision("auto", "cuda", "deeplabv3plus") == "fp16"
    assert precision.resolve_precision("fp32", "cpu", "extended") == "fp32"  # an explicit choice stays
    assert precision.resolve_precision("bf16", "cpu", "deeplabv3plus") == "bf16"


def test_channels_last_goes_with_bf16_on_a_cpu_and_always_on_cuda():
    assert precision.uses_channels_last("bf16", "cpu") and precision.uses_channels_last("fp16", "cuda")
    assert precision.uses_channels_last("fp32", "cuda")
    assert not precision.uses_channels_last("fp32", "cpu") and not precision.uses_channels_last("fp32", None)


def test_native_bf16_detection_reads_torchs_cpu_capabilities(monkeypatch):
    precision.cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert precision.cpu_has_native_bf16()
    precision.cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not precision.cpu_has_native_bf16()
    precision.cpu_has_native_bf16.cache_clear()


def test_the_learner_takes_the_fast_path_on_a_cpu(native, tmp_path):
    prepared = prepare_dataset(get_profile("smoke"), run_dir=tmp_path, progress=False)
    settings = TrainSettings(encoder="efficientnet-lite0", weights=None, batch_size=4)
    for name in ("extended", "deeplabv3plus"):
        model = build_model(name, encoder=settings.encoder, weights=None, img_size=prepared.cache.size)
        dls = training_dataloaders(prepared.cache, prepared.split, model.normalization, 4, "cpu")
        learn = make_learner(model, dls, settings, name)
        fast = native and name == "extended"
        mixed = [cb for cb in learn.cbs if isinstance(cb, DeviceMixedPrecision)]
        assert [cb.amp_mode.value for cb in mixed] == (["bf16"] if fast else [])
        conv = next(m for m in learn.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1)
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == fast
