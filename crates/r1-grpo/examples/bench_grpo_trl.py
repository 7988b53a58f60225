#!/usr/bin/env python3
"""TRL's side of `cargo xtask bench grpo`: `GRPOTrainer.train` on the same tiny model, batch and
thread count; prints {"seconds_per_step": .., "trl": ..}."""

import json
import sys
import time
import warnings

import torch
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

warnings.filterwarnings("ignore")


class Timer(TrainerCallback):
    def __init__(self):
        self.times = []
        self.t = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.t)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    half = model.config.vocab_size // 2

    def low_half(completion_ids, **kwargs):
        return [sum(t < half for t in c) / max(len(c), 1) for c in completion_ids]

    n, g = spec["prompts"], spec["g"]
    args = GRPOConfig(
        output_dir="/tmp/r1-bench-grpo-trl", per_device_train_batch_size=n * g, num_generations=g,
        max_completion_length=spec["tokens"], max_steps=spec["steps"] + 1, learning_rate=1e-5,
        logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
        gradient_checkpointing=False, loss_type="dapo", beta=0.0,
    )
    data = Dataset.from_list([{"prompt": f"question {i}"} for i in range(n)] * (spec["steps"] + 2))
    timer = Timer()
    trainer = GRPOTrainer(model=model, reward_funcs=[low_half], args=args, train_dataset=data,
                          processing_class=tok, callbacks=[timer])
    trainer.generation_config.eos_token_id = None
    trainer.train()
    steps = timer.times[1:]  # the first step is a warm-up
    print(json.dumps({"seconds_per_step": sum(steps) / len(steps), "trl": trl.__version__, "steps": len(steps)}))


if __name__ == "__main__":
    main()
