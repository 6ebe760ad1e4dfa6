"""The tiny policy's text side: a ChatML chat template and a byte-level BPE tokenizer trained on the task.

The template has ``{% generation %}`` markers around the assistant's text so
trl can mask everything else from the loss. The tokenizer pads on the left
(``seglib.models.generation`` relies on it).
"""
from __future__ import annotations

from typing import Iterable, Sequence

IMAGE_TOKEN_LLAVA = "<image>"
QWEN_SPECIAL = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
CHAT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# A ChatML template (the format Qwen2.5-VL uses) with {% generation %} markers
# around the assistant's text so trl can mask everything else from the loss.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{% else %}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{{ '<|im_end|>' }}{% endgeneration %}"
    "{% else %}"
    "__USER_PARTS__"
    "{{ '<|im_end|>' }}"
    "{% endif %}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# user content in the order given (image, then text: the usual VLM layout) ...
_USER_PARTS_IN_ORDER = (
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '__IMAGE__' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
)
# ... or the text first, then the image: with causal attention the image tokens can then read the query
_USER_PARTS_TEXT_FIRST = (
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '__IMAGE__' }}{% endif %}{% endfor %}"
)


def chat_template(image_markup: str, text_first: bool = False) -> str:
    """The tiny policy's ChatML template; ``image_markup`` is what stands for one image."""
    parts = _USER_PARTS_TEXT_FIRST if text_first else _USER_PARTS_IN_ORDER
    return _CHAT_TEMPLATE.replace("__USER_PARTS__", parts).replace("__IMAGE__", image_markup)


def train_tokenizer(train_texts: Iterable[str], vocab_size: int, extra_special: Sequence[str],
                    split_digits: bool = True, number_tokens: int = 0):
    """A byte-level BPE tokenizer trained on the task's text, with ChatML special tokens.

    ``split_digits``: every digit is its own token; otherwise digit runs are
    pre-tokens of their own and ``number_tokens`` > 0 makes each integer below
    it a single token (the trainer sees each one often enough to merge it).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = list(CHAT_SPECIAL) + [t for t in extra_special if t not in CHAT_SPECIAL]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=split_digits), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    texts = list(train_texts)
    if number_tokens and not split_digits:
        texts += [" ".join(str(i) for i in range(number_tokens))] * 64
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in special if t not in ("<|im_end|>", "<|endoftext|>")],
    )
    fast.padding_side = "left"
    return fast
