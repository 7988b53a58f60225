#!/usr/bin/env python3
"""transformers' side of `cargo xtask bench generate`: the same random-weight shapes, the same
method (t1 = generate 1 token, tN = generate N tokens, greedy, no eos), the same thread count.
Takes one JSON argument and prints one JSON object."""

import json
import sys
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    cfg = dict(spec["config"])
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    vocab = config.vocab_size

    def run(ids, n):
        gc = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)
        assert out.shape[1] == ids.shape[1] + n
        return time.perf_counter() - t

    rows = []
    for b in spec["batches"]:
        ids = torch.randint(0, vocab, (b, spec["prompt"]))
        run(ids, 2)
        t1 = tn = float("inf")
        for _ in range(spec["repeats"]):
            t1 = min(t1, run(ids, 1))
            tn = min(tn, run(ids, spec["new_tokens"]))
        rows.append({
            "batch": b,
            "prefill": b * spec["prompt"] / t1,
            "decode": b * (spec["new_tokens"] - 1) / max(tn - t1, 1e-9),
        })
    print(json.dumps({"rows": rows, "transformers": transformers.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
