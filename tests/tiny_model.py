"""The tiny ViCLIP the unit tests build: a training step takes milliseconds on one core."""

TINY = dict(
    name="tiny",
    image_size=16,
    patch_size=8,
    num_frames=4,
    vision_width=32,
    vision_layers=1,
    vision_heads=2,
    embed_dim=16,
    drop_path=0.0,
    tokenizer="word_hash",
    vocab_size=64,
    context_length=8,
    text_width=32,
    text_layers=1,
    text_heads=2,
    temp_init=0.07,
    temp_min=0.01,
    freeze_text=False,
)


def tiny(**overrides) -> dict:
    """The tiny model's settings with some changed (a test's own shape)."""
    unknown = set(overrides) - set(TINY)
    if unknown:
        raise KeyError(f"not tiny-model keys: {sorted(unknown)}")
    return {**TINY, **overrides}
