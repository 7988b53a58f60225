#!/usr/bin/env python3
"""Loads every model a `r1 train` run wrote into Hugging Face transformers, by hand, and checks
that transformers and r1 agree on them: the prompts' token ids and greedy completions of held-out
prompts are compared token for token with `r1 generate --greedy`, and transformers' greedy answers are graded.

    python tests/check_run_in_transformers.py RUN [--r1 target/release/r1] [--prompts 20]

Needs torch and transformers (not CI: see docs/pipeline.md for the recorded result)."""

import argparse
import json
import os
import re
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--r1", default="target/release/r1")
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--benchmark", default="arith")
    args = ap.parse_args()

    state = json.load(open(os.path.join(args.run, "run.json")))
    rows = [json.loads(l) for l in open(os.path.join(args.run, "data", args.benchmark, "eval.jsonl"))]
    rows = rows[: args.prompts]
    failures = 0
    for stage in state["stages"]:
        model_rel = stage.get("artifacts", {}).get("model")
        if not model_rel or stage["status"] != "done":
            continue
        folder = os.path.join(args.run, model_rel)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        tok = AutoTokenizer.from_pretrained(folder)
        same = correct = 0
        for row in rows:
            ids = tok(row["prompt"], return_tensors="pt").input_ids
            with torch.no_grad():
                out = model.generate(
                    ids, max_new_tokens=48, do_sample=False, eos_token_id=tok.eos_token_id,
                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                )
            hf_ids = out[0, ids.shape[1]:].tolist()
            if hf_ids and hf_ids[-1] == tok.eos_token_id:
                hf_ids = hf_ids[:-1]
            hf_text = tok.decode(hf_ids, skip_special_tokens=True)
            r1 = subprocess.run(
                [args.r1, "generate", "--model", folder, "--prompt", row["prompt"], "--greedy",
                 "--max-new-tokens", "48", "--json"],
                check=True, capture_output=True, text=True, env={**os.environ, "R1_NO_PROGRESS": "1"},
            )
            sample = json.loads(r1.stdout)["samples"][0]
            r1_ids = sample["completion_ids"]
            if r1_ids and r1_ids[-1] == tok.eos_token_id:
                r1_ids = r1_ids[:-1]
            same += int(sample["prompt_ids"] == ids[0].tolist() and r1_ids == hf_ids and sample["text"] == hf_text)
            m = re.fullmatch(r"<think>[^<>]*</think><answer>(-?\d+)</answer>", hf_text)
            correct += int(bool(m) and m.group(1) == str(row["answer"]))
        n = len(rows)
        print(f"{stage['name']:<20} {model.config.model_type} {sum(p.numel() for p in model.parameters())} params: "
              f"transformers == r1 greedy on {same}/{n}, transformers greedy correct {correct}/{n}")
        failures += n - same
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
