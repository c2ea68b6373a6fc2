"""The training precision follows the machine: mixed float16 on a GPU, bf16 on a CPU that has it, float32 elsewhere."""
import pytest

from pneumonia.train import devices


def test_the_choice_by_machine():
    gpu = ["PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')"]
    assert devices.choose_precision(gpu, {"avx2"}) == "mixed_float16"
    assert devices.choose_precision(gpu, {"avx512_bf16"}) == "mixed_float16"   # a GPU wins
    assert devices.choose_precision([], {"avx512f", "avx512_bf16"}) == "mixed_bfloat16"
    assert devices.choose_precision([], {"amx_bf16"}) == "mixed_bfloat16"
    assert devices.choose_precision([], {"avx2", "avx512f"}) == "float32"
    assert devices.choose_precision([], set()) == "float32"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert devices.cpu_flags(info) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert devices.cpu_flags(tmp_path / "missing") == set()


def test_an_explicit_precision_is_kept_and_a_wrong_one_named():
    for p in devices.PRECISIONS:
        assert devices.resolve(p) == p
    with pytest.raises(ValueError, match="mixed_float16"):
        devices.resolve("half")


def test_auto_on_this_machine_is_the_rule_applied_to_it():
    import tensorflow as tf
    expected = devices.choose_precision(tf.config.list_physical_devices("GPU"), devices.cpu_flags())
    assert devices.resolve("auto") == expected


def test_the_cache_size_and_the_recipe_that_fits():
    # 4,465 training and 745 validation X-rays, 2 stressed copies: the full recipe caches 12.5 GB.
    assert devices.cache_bytes("conv4", 4465, 745, 2, 2) == (4465 * 3 + 745 * 3) * 28 * 28 * 512 * 2
    assert devices.cache_bytes("conv5", 4465, 745, 2, 2) == devices.cache_bytes("conv4", 4465, 745, 2, 2) // 2
    assert devices.recipe_for_memory(int(51e9), 4465, 745, 2) == ("conv4", 2)    # a high-RAM runtime
    assert devices.recipe_for_memory(int(12.7e9), 4465, 745, 2) == ("conv5", 2)  # a free Colab runtime
    assert devices.recipe_for_memory(0, 4465, 745, 2) == devices.RECIPES[-1]
    assert devices.available_memory() > 0
