"""A tokenizer fitted offline to given text, for tiny models trained from scratch.

`fit_tokenizer` trains a byte-level BPE on a corpus of strings (the layer above plays the
environments for one: `creditgym.train.corpus.env_corpus`). Byte-level means every string
round-trips exactly (``decode(encode(x)) == x``) and no character is ever unknown.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL_TOKENS", "fit_tokenizer"]

#: pad, bos, eos, unk, in the order they get ids 0..3.
SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "unk_token": "<unk>",
}


def fit_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`.

    Encoding a text adds `<bos>` in front (``add_special_tokens=False`` leaves it out, which
    is how responses are tokenised); padding is on the left, as batched generation needs.
    Deterministic for the same texts in the same order.

    Args:
        texts: the training corpus (for example `creditgym.train.corpus.env_corpus(...)`).
        vocab_size: target vocabulary size including the 256 byte symbols and 4 specials.
    """
    specials = list(SPECIAL_TOKENS.values())
    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(specials)
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs at least {minimum}"
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, backend.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
        **SPECIAL_TOKENS,
    )
