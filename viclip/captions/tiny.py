"""Tiny random-weight captioning models, saved like real checkpoints, for offline tests and CPU benchmarks.

Each builder writes a folder that `from_pretrained` loads with no network:
the real transformers classes (BLIP-2, BLIP, GIT, VisionEncoderDecoder, T5,
Llama) at a few thousand parameters, with a byte-level BPE tokenizer trained
here on caption-like sentences. Their captions are gibberish; the shapes,
processors, generation and batching are the real ones.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = (
    "a red circle on a black background",
    "a small blue square moves left",
    "the green triangle grows bigger",
    "a man cutting a tomato in a kitchen",
    "a dog runs on the beach",
    "two people talk in a room",
    "captions of frames sampled in order from one video",
    "write one sentence describing what happens",
    "a video shows",
    "a photo of",
)
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
IMAGE = 32
# A chat template as instruction-tuned causal LMs ship one: tests the prompt path through it.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>user: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant:{% endif %}"
)


def tokenizer(vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(list(SENTENCES) * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _ids(tok) -> dict:
    return {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}


def _vision(**extra) -> dict:
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": IMAGE,
        "patch_size": 8,
        **extra,
    }


def _save(model, processor, path: Path, tok) -> Path:
    for k, v in _ids(tok).items():
        setattr(model.generation_config, k, v)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def blip2(path: str | Path, seed: int = 0) -> Path:
    """BLIP-2 (ViT, Q-Former, OPT): InternVid's coarse captioner class."""
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    tok = tokenizer()
    n_query = 4
    cfg = Blip2Config(
        vision_config=_vision(),
        qformer_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "encoder_hidden_size": 32,
            "vocab_size": len(tok),
        },
        text_config={
            "model_type": "opt",
            "hidden_size": 32,
            "ffn_dim": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": len(tok),
            "word_embed_proj_dim": 32,
            "max_position_embeddings": 128,
            **_ids(tok),
        },
        num_query_tokens=n_query,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(cfg).eval()
    proc = Blip2Processor(BlipImageProcessor(size={"height": IMAGE, "width": IMAGE}), tok, num_query_tokens=n_query)
    return _save(model, proc, Path(path), tok)


def blip(path: str | Path, seed: int = 1) -> Path:
    """BLIP (v1) captioning: a light frame captioner."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tok = tokenizer()
    cfg = BlipConfig(
        vision_config=_vision(),
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
            "sep_token_id": tok.eos_token_id,
            **_ids(tok),
        },
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(cfg).eval()
    return _save(model, BlipProcessor(BlipImageProcessor(size={"height": IMAGE, "width": IMAGE}), tok), Path(path), tok)


def git(path: str | Path, seed: int = 2) -> Path:
    """GIT: a decoder-only image captioner (its output repeats the prompt, which must be cut)."""
    import torch
    from transformers import CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor

    tok = tokenizer()
    cfg = GitConfig(
        vision_config=_vision(),
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64,
        **_ids(tok),
    )
    torch.manual_seed(seed)
    model = GitForCausalLM(cfg).eval()
    proc = GitProcessor(
        CLIPImageProcessor(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE}), tok
    )
    return _save(model, proc, Path(path), tok)


def vision_encoder_decoder(path: str | Path, seed: int = 3) -> Path:
    """ViT encoder + GPT-2 decoder, the VisionEncoderDecoder family (e.g. vit-gpt2 captioners)."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    tok = tokenizer()
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(
        encoder=ViTModel(ViTConfig(**_vision())),
        decoder=GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tok),
                n_embd=32,
                n_layer=1,
                n_head=2,
                n_positions=64,
                add_cross_attention=True,
                **_ids(tok),
            )
        ),
    ).eval()
    model.config.decoder_start_token_id = model.generation_config.decoder_start_token_id = tok.bos_token_id
    model.config.pad_token_id, model.config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    path = Path(path)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    model.save_pretrained(path)
    ViTImageProcessor(size={"height": IMAGE, "width": IMAGE}).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def t5(path: str | Path, seed: int = 4) -> Path:
    """T5: the seq2seq summarizer class (Flan-T5 at full size)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = tokenizer()
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(tok),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=2,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            decoder_start_token_id=tok.pad_token_id,
        )
    ).eval()
    model.generation_config.decoder_start_token_id = tok.pad_token_id
    return _save(model, tok, Path(path), tok)


def llama(path: str | Path, seed: int = 5, chat: bool = True) -> Path:
    """Llama: the causal-LM summarizer class (Vicuna at full size), with a chat template when `chat`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer()
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
            **_ids(tok),
        )
    ).eval()
    return _save(model, tok, Path(path), tok)


BUILDERS = {
    "blip2": blip2,
    "blip": blip,
    "git": git,
    "vision_encoder_decoder": vision_encoder_decoder,
    "t5": t5,
    "llama": llama,
}


def build(root: str | Path, names=tuple(BUILDERS)) -> dict[str, Path]:
    """Build the named tiny models under `root` (one folder each)."""
    root = Path(root)
    return {name: BUILDERS[name](root / name) for name in names}
