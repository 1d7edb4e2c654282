"""Generate the tiny development model: random weights, a locally trained tokenizer.

Run with the vLLM environment's interpreter (it needs torch, transformers and
tokenizers, which the gateway's own environment never installs)::

    .cache/vllm-venv/bin/python -m sovstack.components.tinymodel OUT_DIR

Nothing is downloaded: the weights come from a fixed seed and the byte-level
BPE tokenizer is trained on text written here, so the same inputs give the
same files. The model is useless for language and only exists so that a real
vLLM has a real model to load and serve.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SEED = 20261122
VOCAB_SIZE = 512
# head_dim = hidden / heads must be 64: the CPU attention backend refuses 16.
HIDDEN = 128
HEADS = 2
LAYERS = 2
INTERMEDIATE = 256
MAX_POSITIONS = 512

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = (
    "The plant runs three production lines. Line one fills bottles, line two caps them.",
    "Pump P-101 reported a pressure of 4.2 bar at 06:00; the setpoint is 4.0 bar.",
    "Maintenance replaced the bearing on conveyor C-7 during the night shift.",
    "Quality control sampled forty units and found no defects in batch 2211.",
    "The operator acknowledged the alarm and reset the interlock on valve V-12.",
    "Energy use per unit fell by three percent after the compressor upgrade.",
    "Hello! How can I help you with the production report today?",
    "Summarise the shift log and list any open work orders for the engineers.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?-_()[]{}",
)


def _train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS) * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)


def generate(out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    _train_tokenizer(out)
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=max(VOCAB_SIZE, len(vocab) + 5),
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        num_hidden_layers=LAYERS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model into")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
