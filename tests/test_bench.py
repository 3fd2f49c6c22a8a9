"""The benchmark's arithmetic; its timings are for `make bench`, never for tests."""

import pytest

from keras_ganime.bench import main, quartiles
from keras_ganime.config import Config
from keras_ganime.families.base import forward_flops
from keras_ganime.families.dcgan import Family, build_discriminator, build_generator
from keras_ganime.families.dcgan_settings import DCGANModel


def test_flop_counts_of_the_reference_by_hand():
    g_macs = (
        1 * 1 * 4 * 4 * 100 * 512  # ConvT stem, every input pixel through the 4x4 kernel
        + 4 * 4 * 4 * 4 * 512 * 256  # ConvT 256 on a 4x4 input
        + 8 * 8 * 4 * 4 * 256 * 128  # ConvT 128 on 8x8
        + 16 * 16 * 4 * 4 * 128 * 64  # ConvT 64 on 16x16
        + 32 * 32 * 3 * 3 * 64 * 64  # Conv 3x3 at 32x32
        + 32 * 32 * 4 * 4 * 64 * 3  # ConvT 3 on 32x32
    )
    d_macs = (
        32 * 32 * 4 * 4 * 3 * 64  # Conv outputs 32x32
        + 16 * 16 * 4 * 4 * 64 * 128
        + 8 * 8 * 4 * 4 * 128 * 256
        + 4 * 4 * 4 * 4 * 256 * 512
        + 4 * 4 * 512  # Dense 1
    )
    assert (g_macs, d_macs) == (142_376_960, 103_817_216)
    g = forward_flops(build_generator(DCGANModel()))
    d = forward_flops(build_discriminator(DCGANModel()))
    assert (g, d) == (2 * g_macs, 2 * d_macs)
    # 2.80 GFLOP per image per training step:
    assert Family.step_flops(Config(), g, d) == 2_800_091_136


def test_upsample_generator_costs_more():
    transpose = forward_flops(build_generator(DCGANModel()))
    upsample = forward_flops(build_generator(DCGANModel(upsampling="upsample")))
    # Each up-sampling block convolves at the doubled size: 4x the multiply-adds of its ConvT.
    assert upsample - transpose == 2 * 3 * (4 - 1) * 33_554_432


def test_bad_batches_are_a_one_line_error(capsys):
    assert main(["--batches", "16,x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --batches must be positive integers") and err.count("\n") == 1


def test_ratio_quartiles_by_hand():
    # Ratios within the repeats: 2, 3, 4, 5; quartiles by the exclusive method, (n + 1) p:
    # position 1.25 -> 2 + 0.25 * 1, position 3.75 -> 4 + 0.75 * 1.
    assert quartiles([2.0, 6.0, 4.0, 10.0], [1.0, 2.0, 1.0, 2.0]) == [2.25, 4.75]
    assert quartiles([3.0], [2.0]) == [1.5, 1.5]  # --quick: one repeat


def test_soak_reports_memory_and_speed_per_block():
    from keras_ganime.bench import soak

    result = soak(6, block=2)
    blocks = result["blocks"]
    assert [b["step"] for b in blocks] == [2, 4, 6]
    assert all(b["rss_mb"] > 100 and b["images_per_s"] > 0 for b in blocks)
    growth = blocks[-1]["rss_mb"] - blocks[0]["rss_mb"]
    assert result["rss_growth_mb"] == round(growth, 1)
    speed = blocks[-1]["images_per_s"] / blocks[1]["images_per_s"] - 1
    assert result["speed_change"] == round(speed, 4)
    assert result["holds"] == ((growth <= 30 or growth <= 0.03 * blocks[0]["rss_mb"])
                               and abs(speed) <= 0.10)


def test_flop_counts_of_the_presets_by_hand():
    from keras_ganime.bench import experiment_flops

    # seed003: the reference's D with a 4x4 conv head for the Dense, no biases; G without the
    # 3x3 conv, a ConvT stem. Step: 4 G + 8 D, as the reference.
    g003 = (1 * 1 * 4 * 4 * 100 * 512 + 4 * 4 * 4 * 4 * 512 * 256 + 8 * 8 * 4 * 4 * 256 * 128
            + 16 * 16 * 4 * 4 * 128 * 64 + 32 * 32 * 4 * 4 * 64 * 3)
    d003 = (32 * 32 * 4 * 4 * 3 * 64 + 16 * 16 * 4 * 4 * 64 * 128 + 8 * 8 * 4 * 4 * 128 * 256
            + 4 * 4 * 4 * 4 * 256 * 512 + 1 * 1 * 4 * 4 * 512 * 1)
    assert (g003, d003) == (104_628_224, 103_817_216)
    assert experiment_flops("seed003") == 2 * (4 * g003 + 8 * d003)
    # carpedm20: a Dense stem, 5x5 kernels, a Dense head, G stepped twice: G + 6 D + 2 (3 G + 2 D).
    g_c = (100 * 4 * 4 * 512 + 4 * 4 * 5 * 5 * 512 * 256 + 8 * 8 * 5 * 5 * 256 * 128
           + 16 * 16 * 5 * 5 * 128 * 64 + 32 * 32 * 5 * 5 * 64 * 3)
    d_c = (32 * 32 * 5 * 5 * 3 * 64 + 16 * 16 * 5 * 5 * 64 * 128 + 8 * 8 * 5 * 5 * 128 * 256
           + 4 * 4 * 5 * 5 * 256 * 512 + 4 * 4 * 512)
    assert (g_c, d_c) == (163_020_800, 162_209_792)
    assert experiment_flops("carpedm20") == 2 * (7 * g_c + 10 * d_c)
    assert experiment_flops("carpedm20-dskip") == 2 * (4 * g_c + 8 * d_c)  # 1:1
    assert experiment_flops(None) == 2_800_091_136


def test_unknown_experiments_are_a_one_line_error(capsys):
    assert main(["--experiments", "seed001,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --experiments: no experiment nope; experiments: default,")
    assert err.count("\n") == 1


def test_flop_counts_of_began_by_hand():
    from keras_ganime.bench import experiment_flops

    def conv(size: int, c_in: int, c_out: int) -> int:  # a 3x3 conv's output size x k x k
        return size * size * 9 * c_in * c_out

    # G, and D's decoder: Dense 64 -> 8x8x128; two 128 -> 128 convs at 8, 16, 32, 64; to RGB.
    g = 64 * 8 * 8 * 128 + sum(2 * conv(s, 128, 128) for s in (8, 16, 32, 64)) + conv(64, 128, 3)
    # D's encoder: to 128 at 64; per scale two convs, widening to 128 (scale + 1), a stride-2
    # conv (its output half the size) but after the last; Dense 8x8x512 -> 64.
    encoder = (conv(64, 3, 128)
               + conv(64, 128, 128) + conv(64, 128, 128) + conv(32, 128, 128)
               + conv(32, 128, 256) + conv(32, 256, 256) + conv(16, 256, 256)
               + conv(16, 256, 384) + conv(16, 384, 384) + conv(8, 384, 384)
               + conv(8, 384, 512) + conv(8, 512, 512) + 8 * 8 * 512 * 64)
    assert (g, encoder) == (1_619_001_344, 3_347_578_880)
    # 3 G + 7 D per image (families/began.py), D = encoder + decoder.
    assert experiment_flops("began64") == 2 * (3 * g + 7 * (encoder + g))


@pytest.mark.skipif(bool(__import__("tensorflow").config.list_physical_devices("GPU")),
                    reason="a GPU is here: the experiment runs")
def test_a_gpu_experiment_is_skipped_on_a_cpu_with_the_reason(capsys):
    """stylegan-seed003 says it is made for a GPU; there is none on this machine."""
    import json

    assert main(["--experiments", "stylegan-seed003", "--quick", "--json"]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert result == {"experiment": "stylegan-seed003", "skipped": 'made for a GPU ([experiment] '
                      'hardware = "gpu"), and there is none here'}
