#!/usr/bin/env python3
"""The Python side of `cargo xtask bench sft`.

    bench_sft_hf.py make DIR VOCAB HIDDEN LAYERS   # a random Qwen2 checkpoint (seeded)
    bench_sft_hf.py time SPEC_JSON                 # transformers' Trainer on it; prints JSON

The timing run trains on the same random token sequences r1 uses (labels on the second half of
each sequence), batch and thread count given in the spec.
"""

import json
import sys
import time
import warnings

import torch
import transformers
from datasets import Dataset
from transformers import Qwen2Config, Qwen2ForCausalLM, Trainer, TrainerCallback, TrainingArguments

warnings.filterwarnings("ignore")


class Timer(TrainerCallback):
    def __init__(self):
        self.times = []
        self.t = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.t)


def make(folder, vocab, hidden, layers):
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers,
        num_attention_heads=max(hidden // 64, 1),
        num_key_value_heads=max(hidden // 128, 1),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).to(torch.float32).save_pretrained(folder)


def timed(spec):
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM.from_pretrained(spec["model"], dtype=torch.float32, attn_implementation="sdpa")
    rows = []
    for seq in spec["sequences"]:
        half = len(seq) // 2
        rows.append({"input_ids": seq, "attention_mask": [1] * len(seq), "labels": [-100] * half + seq[half:]})
    args = TrainingArguments(
        output_dir="/tmp/r1-bench-sft-hf",
        per_device_train_batch_size=spec["batch"],
        max_steps=spec["steps"] + spec["warmup"],
        learning_rate=1e-4,
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        train_sampling_strategy="sequential",
    )
    timer = Timer()
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), callbacks=[timer])
    trainer.train()
    times = timer.times[spec["warmup"] :]
    print(json.dumps({"seconds_per_step": sum(times) / len(times), "transformers": transformers.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        timed(json.loads(sys.argv[2]))
