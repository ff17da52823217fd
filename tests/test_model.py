import keras
import numpy as np
import pytest

from bractivate.activity import block_activity
from bractivate.genome import Genome, unet_skip_edges
from bractivate.model import block_layers, block_sizes, build_model, count_params, model_flops


def unet_params(depth: int, filters: int, channels: int = 1) -> int:
    """Closed form for a genome with only the UNet skips (conv + bias, BN gamma/beta)."""
    w = [round(filters * 1.5**i) for i in range(depth)]
    mid = round(filters * 1.5**depth)

    def block(cin, cout):
        return 9 * cin * cout + cout + 2 * cout + 9 * cout * cout + cout + 2 * cout

    total = block(channels, w[0]) + sum(block(w[i - 1], w[i]) for i in range(1, depth))
    total += block(w[-1], mid)
    up = [mid] + w[::-1]  # input width of each decoder's deconv, deepest first
    for i, cin in zip(reversed(range(depth)), up):
        total += 4 * cin * w[i] + w[i] + block(2 * w[i], w[i])
    return total + w[0] + 1


@pytest.mark.parametrize("depth, filters", [(1, 4), (2, 8), (4, 16)])
def test_unet_genome_parameter_count_matches_closed_form(depth, filters):
    model = build_model(Genome(depth, filters, tuple(unet_skip_edges(depth))), (64, 64, 1))
    assert count_params(model) == unet_params(depth, filters)
    assert model.output_shape == (None, 64, 64, 1)


def test_layer_names_carry_blocks():
    model = build_model(Genome(2, 4, tuple(unet_skip_edges(2))), (32, 32, 1))
    assert block_layers(model) == {
        "enc0": ["enc0_conv1", "enc0_conv2"], "enc1": ["enc1_conv1", "enc1_conv2"],
        "mid": ["mid_conv1", "mid_conv2"], "dec1": ["dec1_deconv", "dec1_conv1", "dec1_conv2"],
        "dec0": ["dec0_deconv", "dec0_conv1", "dec0_conv2"],
    }
    assert model.get_layer("head_conv").activation.__name__ == "sigmoid"
    assert isinstance(model.get_layer("dec0_conv1").kernel_initializer, keras.initializers.GlorotUniform)


def test_add_edge_between_blocks_of_different_widths_trains_a_step():
    genome = Genome(2, 8, (("enc0", "dec1", "add"), ("enc0", "mid", "concat"), ("enc1", "dec0", "add")))
    model = build_model(genome, (32, 32, 1))
    assert model.get_layer("dec1_resize_enc0").output.shape[1:3] == (16, 16)
    assert model.get_layer("dec1_proj_enc0").filters == 12  # enc0 (8) projected to dec1's width
    assert model.get_layer("dec0_proj_enc1").output.shape[1:] == (32, 32, 8)
    assert model.get_layer("mid_concat").output.shape[-1] == 12 + 8
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
    loss = model.train_on_batch(x, (x > 0.5).astype("float32"))
    assert np.isfinite(float(np.asarray(loss)))


def test_depth_ten_builds_at_128_and_stops_downsampling_at_min_size():
    genome = Genome(10, 4, tuple(unet_skip_edges(10)) + (("enc0", "mid", "add"),))
    sizes = block_sizes(genome, (128, 128, 1))
    assert [sizes[f"enc{i}"][0] for i in range(10)] == [128, 64, 32, 16, 8, 4, 4, 4, 4, 4]
    assert sizes["mid"] == (4, 4)
    model = build_model(genome, (128, 128, 1))
    assert model.output_shape == (None, 128, 128, 1)
    assert model.get_layer("dec9_deconv").strides == (1, 1)
    assert model.get_layer("dec4_deconv").strides == (2, 2)


def test_flops_count_of_a_one_block_unet():
    n, s = 4, 8
    model = build_model(Genome(1, n, tuple(unet_skip_edges(1))), (s, s, 1))
    m = round(n * 1.5)

    def conv(hw, cin, cout, k=3):
        return 2 * hw * hw * k * k * cin * cout

    expected = (conv(s, 1, n) + conv(s, n, n) + conv(s // 2, n, m) + conv(s // 2, m, m)
                + 2 * (s // 2) ** 2 * 4 * m * n + conv(s, 2 * n, n) + conv(s, n, n) + conv(s, n, 1, 1))
    assert model_flops(model) == expected


def test_block_activity_modes():
    model = build_model(Genome(2, 4, tuple(unet_skip_edges(2))), (32, 32, 1))
    x = np.random.default_rng(1).random((3, 32, 32, 1)).astype("float32")
    weight = block_activity(model, mode="weight")
    manual = np.mean([np.abs(keras.ops.convert_to_numpy(model.get_layer(f"dec1_{k}").kernel)).mean()
                      for k in ("deconv", "conv1", "conv2")])
    assert weight["dec1"] == pytest.approx(manual)
    activation = block_activity(model, x, "activation")
    assert set(activation) == set(weight) == set(Genome(2, 4).blocks)
    assert all(v > 0 for v in activation.values())
    probe = keras.Model(model.input, model.get_layer("enc1_conv2").output)
    conv2 = np.abs(keras.ops.convert_to_numpy(probe(x))).mean()
    probe = keras.Model(model.input, model.get_layer("enc1_conv1").output)
    conv1 = np.abs(keras.ops.convert_to_numpy(probe(x))).mean()
    assert activation["enc1"] == pytest.approx((conv1 + conv2) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="activity mode 'grad'"):
        block_activity(model, x, "grad")


def test_one_forward_pass_gives_the_prediction_and_the_activity_of_the_first_batch():
    from bractivate.activity import predict_with_activity
    from bractivate.train import predict_batches

    model = build_model(Genome(2, 4, tuple(unet_skip_edges(2))), (32, 32, 1))
    x = np.random.default_rng(2).random((5, 32, 32, 1)).astype("float32")
    pred, activity = predict_with_activity(model, x, batch_size=2)
    assert pred.shape == (5, 32, 32, 1)
    np.testing.assert_allclose(pred, predict_batches(model, x, batch_size=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred, keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-4, atol=1e-5)
    first_batch = block_activity(model, x[:2], "activation")
    assert activity == pytest.approx(first_batch, rel=1e-5)
    assert activity != pytest.approx(block_activity(model, x[2:4], "activation"), rel=1e-3)


def test_mixed_precision_keeps_the_head_and_the_loss_in_float32(blobs):
    from bractivate.train import fit, use_precision

    try:
        assert use_precision("mixed_bfloat16") == "mixed_bfloat16"
        model = build_model(Genome(1, 4, tuple(unet_skip_edges(1))), blobs.input_shape)
        assert model.get_layer("enc0_conv1").compute_dtype == "bfloat16"
        assert model.get_layer("head_conv").compute_dtype == "float32"
        with pytest.raises(ValueError, match="built under dtype policy mixed_bfloat16, not 'float32'"):
            fit(model, blobs, epochs=1, batch_size=4, learning_rate=1e-3, precision="float32")
        run = fit(model, blobs, epochs=1, batch_size=4, learning_rate=1e-3, precision="mixed_bfloat16")
        assert run.finite and run.train_seconds > 0
    finally:
        use_precision("float32")
    with pytest.raises(ValueError, match="precision 'half' not in"):
        use_precision("half")


def test_compiled_loss_is_built_from_the_output_shape():
    # bractivate.train._build_loss relies on Keras' private ``Model._compile_loss``
    # (bractivate.compat): this fails when a Keras upgrade changes it, instead of fit silently
    # tracing every model once more.
    from bractivate.compat import compiled_loss
    from bractivate.train import _build_loss

    model = build_model(Genome(1, 2, tuple(unet_skip_edges(1))), (8, 8, 1))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    assert compiled_loss(model) is not None and not compiled_loss(model).built
    _build_loss(model)
    assert compiled_loss(model).built
