"""A tiny randomly initialised causal LM with a tokenizer trained on the spot.

No weights can be downloaded on build machines, yet every line of the local generation
path (from_pretrained, chat template, padding, sampling) should run somewhere. This builds
a real model folder in seconds that loads through the same `from_pretrained(path)` call a
real model uses; its output is gibberish, but deterministic gibberish.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? The answer is 72.",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
    "abbrev clips_answer : ℕ := 48 + 48 / 2",
    "theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :"
    " april + may = clips_answer := by",
    "  subst h₀ h₁; norm_num [clips_answer]",
    "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by norm_num",
    "example (x : ℝ) (h : 2 * x + 3 = 7) : x = 2 := by linarith",
    "Let x be a real number with 2x + 3 = 7. Show that x = 2. Verdict: yes",
)
"""A few lines of the text the framework deals with: word problems, Lean 4, verdicts."""

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
BOS, EOS = "<s>", "</s>"


def build_tiny_model(path: str | Path, *, vocab_size: int = 384, hidden_size: int = 64,
                     num_layers: int = 2, num_heads: int = 4, max_positions: int = 4096,
                     seed: int = 0, chat_template: bool = True,
                     corpus: tuple[str, ...] = CORPUS) -> Path:
    """Save a tokenizer and a Llama-style model with random weights (fixed `seed`) to `path`.

    The tokenizer is byte-level BPE (any Unicode input encodes, and random output can
    decode to invalid UTF-8, as with real models), adds BOS to plain text, has EOS and
    deliberately no pad token (backends must cope). `chat_template=False` leaves it without
    one, to exercise the plain-join fallback. The context (`max_positions`, rotary: no weights)
    is long enough for the few-shot prompts, which its small vocabulary splits into many tokens.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(corpus, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bpe.token_to_id(BOS))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=BOS, eos_token=EOS)
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2), max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    return path
