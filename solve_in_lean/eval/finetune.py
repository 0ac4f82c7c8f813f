"""Supervised fine-tuning on chat examples: LoRA through peft, or full fine-tuning for small models.

A plain torch loop (AdamW, linear warm-up and decay, gradient accumulation) rather than the
Trainer: few moving parts, deterministic under a seed, the same code on a CPU and a GPU. The
loss covers only the assistant turn. LoRA weights are merged before saving, so the trained
model loads like any other (`from_pretrained`, vLLM) for evaluation.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from solve_in_lean.models.base import join_messages

METHODS = ("lora", "full")
IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    method: str = "lora"
    epochs: float = 1.0
    max_steps: int | None = None
    """Optimizer steps; overrides `epochs` when set."""
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_seq_len: int = 2048
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    dtype: str = "auto"
    device: str = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        if self.method not in METHODS:
            raise ValueError(f"train method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if min(self.batch_size, self.grad_accum, self.max_seq_len, self.lora_r) < 1 or self.lr <= 0:
            raise ValueError("batch_size, grad_accum, max_seq_len, lora_r and lr must be positive")
        if self.max_steps is None and self.epochs <= 0:
            raise ValueError("epochs must be positive (or set max_steps)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lora_targets": list(self.lora_targets)}


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    examples: int
    losses: list[float] = field(default_factory=list)
    """Mean training loss of each optimizer step."""
    seconds: float = 0.0
    trainable_params: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_dir": str(self.out_dir)}


def prompt_text(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The prompt as the generator sends it: the chat template when there is one, else plain turns."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return join_messages(messages)


def encode_example(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one example; labels hide the prompt, so only the answer is learned.
    Too long: the start of the prompt is cut, the answer kept."""
    prompt = prompt_text(tokenizer, messages[:-1])
    with_bos = not tokenizer.chat_template  # the chat template writes BOS itself
    p_ids = tokenizer(prompt, add_special_tokens=with_bos).input_ids
    a_ids = tokenizer(messages[-1]["content"], add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    a_ids = a_ids[:max_len]
    p_ids = p_ids[len(p_ids) - (max_len - len(a_ids)):] if len(p_ids) + len(a_ids) > max_len else p_ids
    return p_ids + a_ids, [IGNORE] * len(p_ids) + a_ids


def _batches(encoded: list[tuple[list[int], list[int]]], batch_size: int, steps: int, grad_accum: int,
             seed: int) -> list[list[int]]:
    """Indices of each micro-batch: shuffled passes over the data, as many as the steps need."""
    rng = random.Random(seed)
    need = steps * grad_accum * batch_size
    order: list[int] = []
    while len(order) < need:
        epoch = list(range(len(encoded)))
        rng.shuffle(epoch)
        order += epoch
    return [order[i:i + batch_size] for i in range(0, need, batch_size)]


def _collate(rows: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = [r[0] + [pad_id] * (width - len(r[0])) for r in rows]
    labels = [r[1] + [IGNORE] * (width - len(r[1])) for r in rows]
    mask = [[1] * len(r[0]) + [0] * (width - len(r[0])) for r in rows]
    return {"input_ids": torch.tensor(ids, device=device), "labels": torch.tensor(labels, device=device),
            "attention_mask": torch.tensor(mask, device=device)}


def total_steps(n_examples: int, cfg: TrainConfig) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * n_examples / (cfg.batch_size * cfg.grad_accum)))


def _load(base: str, cfg: TrainConfig) -> tuple[Any, Any, str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from solve_in_lean.models.transformers_backend import pick_device, pick_dtype

    device = pick_device(cfg.device)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=pick_dtype(cfg.dtype, device), device_map=device)
    if cfg.gradient_checkpointing:
        # transformers 5 renamed it; 4.x only has the old name
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
        model.config.use_cache = False
        if cfg.method == "lora":
            model.enable_input_require_grads()  # else the frozen embeddings cut the adapters' gradients
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in cfg.lora_targets if t in present]
        if not targets:
            raise ValueError(f"none of the LoRA target modules {list(cfg.lora_targets)} is in {base}")
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                 target_modules=targets, task_type="CAUSAL_LM"))
    return model, tokenizer, device


def finetune(base: str | Path, examples: list[dict[str, Any]], out_dir: str | Path, cfg: TrainConfig, *,
             progress: bool | None = None, description: str = "training") -> TrainResult:
    """Train `base` on the examples' chat messages and save the result to `out_dir` (weights,
    tokenizer, train.json with the config and loss curve). The folder appears only when complete."""
    import torch

    from solve_in_lean.progress import track

    if not examples:
        raise ValueError("no training examples")
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model, tokenizer, device = _load(str(base), cfg)
    encoded = [encode_example(tokenizer, e["messages"], cfg.max_seq_len) for e in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    steps = total_steps(len(encoded), cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    batches = _batches(encoded, cfg.batch_size, steps, cfg.grad_accum, cfg.seed)
    model.train()
    losses = []
    for step in track(range(steps), total=steps, description=description, enabled=progress):
        total = 0.0
        for micro in batches[step * cfg.grad_accum:(step + 1) * cfg.grad_accum]:
            loss = model(**_collate([encoded[i] for i in micro], pad_id, device)).loss / cfg.grad_accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(total)
    result = TrainResult(Path(out_dir), steps, len(examples), losses, 0.0, sum(p.numel() for p in params))
    model.eval()
    if cfg.method == "lora":
        model = model.merge_and_unload()
    result.seconds = time.perf_counter() - start
    _save(model, tokenizer, Path(out_dir), {"config": cfg.to_dict(), "base": str(base), "result": result.to_dict()})
    del model, optimizer, schedule
    if device.startswith("cuda"):  # hand the memory back before the evaluation loads its own model
        import gc

        gc.collect()
        torch.cuda.empty_cache()
    return result


def _save(model: Any, tokenizer: Any, out: Path, info: dict[str, Any]) -> None:
    """Write into a temporary folder and rename it, so a kill never leaves a half-saved model."""
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "train.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
