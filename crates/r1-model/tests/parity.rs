//! Parity with Hugging Face transformers on the tiny checkpoints that
//! `tests/fixtures/make_fixtures.py` writes: every folder under `tests/fixtures/models` with a
//! `reference.json` is checked, so a new fixture needs no new test code.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use r1_model::{
    Batch, GenerationConfig, Pretrained, SamplingParams, continuation_logprobs, generate,
    model::read_f32,
};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixture folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("reference.json").exists())
        .collect();
    out.sort();
    assert!(
        out.len() >= 4,
        "expected the committed fixtures in {}",
        root.display()
    );
    out
}

fn reference(folder: &Path) -> Value {
    let text = std::fs::read_to_string(folder.join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("valid reference.json")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_f64().expect("number") as f32),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(what: &str, folder: &Path, got: &[f32], want: &[f32], tol: f32) {
    let d = max_abs_diff(got, want);
    assert!(
        d <= tol,
        "{}: {what}: max |diff| {d:e} exceeds {tol:e}",
        folder.file_name().unwrap_or_default().to_string_lossy()
    );
}

fn load(folder: &Path) -> Pretrained {
    Pretrained::load(folder, Some(DType::F32), &Device::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", folder.display()))
}

#[test]
fn logits_match_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let p = load(&folder);
        let input = ids(&r["input_ids"]);
        let batch = Batch::left_padded(std::slice::from_ref(&input), 0);
        let logits = read_f32(p.model.forward(&batch).expect("forward")).expect("read");
        assert_close(
            "all-position logits",
            &folder,
            &logits,
            &floats(&r["logits_all"]),
            TOL,
        );
        let v = p.model.config().vocab_size;
        assert_close(
            "last-position logits",
            &folder,
            &logits[logits.len() - v..],
            &floats(&r["logits_last"]),
            TOL,
        );
    }
}

#[test]
fn hidden_states_match_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let p = load(&folder);
        let batch = Batch::left_padded(&[ids(&r["input_ids"])], 0);
        let ours = p.model.hidden_states(&batch).expect("hidden states");
        let theirs = r["hidden_states"].as_array().expect("list");
        let n = theirs.len();
        // transformers: embeddings, each layer's output but the last, then the normed output.
        for (i, want) in theirs.iter().enumerate() {
            let got = if i == n - 1 {
                &ours[ours.len() - 1]
            } else {
                &ours[i]
            };
            let got = read_f32(got.clone()).expect("read");
            assert_close(
                &format!("hidden state {i}"),
                &folder,
                &got,
                &floats(want),
                TOL,
            );
        }
    }
}

#[test]
fn greedy_generation_matches_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let Some(g) = r.get("greedy") else { continue };
        let p = load(&folder);
        let config = GenerationConfig {
            max_new_tokens: g["max_new_tokens"].as_u64().expect("n") as usize,
            sampling: SamplingParams::greedy(),
            ignore_eos: true,
            pad_token_id: p.pad_token_id(),
            ..GenerationConfig::default()
        };
        let out = generate(&p.model, &[ids(&g["prompt_ids"])], &config, None).expect("generate");
        assert_eq!(
            out[0].completion_ids,
            ids(&g["completion_ids"]),
            "{}",
            folder.display()
        );

        // The reported log-probs are the model's own: they equal a scoring pass.
        let scored = continuation_logprobs(
            &p.model,
            &[(ids(&g["prompt_ids"]), out[0].completion_ids.clone())],
            1.0,
            p.pad_token_id(),
        )
        .expect("logprobs");
        assert_close(
            "generation log-probs",
            &folder,
            &out[0].completion_logprobs,
            &scored[0],
            TOL,
        );
    }
}

#[test]
fn left_padded_batch_matches_transformers_and_single_rows() {
    for folder in fixtures() {
        let r = reference(&folder);
        let Some(b) = r.get("batch") else { continue };
        let p = load(&folder);
        let seqs: Vec<Vec<u32>> = b["sequences"]
            .as_array()
            .expect("list")
            .iter()
            .map(ids)
            .collect();
        let pad = b["pad_token_id"].as_u64().expect("pad") as u32;
        let batch = Batch::left_padded(&seqs, pad);
        let logits = read_f32(p.model.forward(&batch).expect("forward")).expect("read");
        let v = p.model.config().vocab_size;
        for (i, s) in seqs.iter().enumerate() {
            let start = (i * batch.seq + batch.seq - s.len()) * v;
            let got = &logits[start..(i + 1) * batch.seq * v];
            assert_close(
                &format!("padded row {i}"),
                &folder,
                got,
                &floats(&b["logits"][i]),
                TOL,
            );
        }

        let config = GenerationConfig {
            max_new_tokens: b["greedy_max_new_tokens"].as_u64().expect("n") as usize,
            sampling: SamplingParams::greedy(),
            ignore_eos: true,
            pad_token_id: pad,
            ..GenerationConfig::default()
        };
        let batched = generate(&p.model, &seqs, &config, None).expect("generate");
        let want: Vec<Vec<u32>> = b["greedy"]
            .as_array()
            .expect("list")
            .iter()
            .map(ids)
            .collect();
        for (i, s) in seqs.iter().enumerate() {
            assert_eq!(
                batched[i].completion_ids,
                want[i],
                "{}: row {i}",
                folder.display()
            );
            let single =
                generate(&p.model, std::slice::from_ref(s), &config, None).expect("generate");
            assert_eq!(single[0].completion_ids, batched[i].completion_ids);
            assert_close(
                "batched vs single log-probs",
                &folder,
                &batched[i].completion_logprobs,
                &single[0].completion_logprobs,
                TOL,
            );
        }
    }
}

#[test]
fn continuation_logprobs_match_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let Some(l) = r.get("logprobs") else { continue };
        let p = load(&folder);
        let prompt = ids(&l["prompt_ids"]);
        let cont = ids(&l["continuation_ids"]);
        for (t, want) in l["by_temperature"].as_object().expect("map") {
            let t: f32 = t.parse().expect("temperature");
            // Score it beside a shorter pair so that the padded path is exercised too.
            let pairs = vec![
                (prompt.clone(), cont.clone()),
                (prompt[..3].to_vec(), cont[..2].to_vec()),
            ];
            let got =
                continuation_logprobs(&p.model, &pairs, t, p.pad_token_id()).expect("logprobs");
            assert_close(
                &format!("log-probs at T={t}"),
                &folder,
                &got[0],
                &floats(want),
                TOL,
            );
            assert_eq!(got[1].len(), 2);
        }
    }
}

#[test]
fn tokenizer_and_chat_template_match_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let Some(cases) = r.get("tokenizer") else {
            continue;
        };
        let p = load(&folder);
        let tok = p.tokenizer.as_ref().expect("tokenizer.json");
        for case in cases.as_array().expect("list") {
            let text = case["text"].as_str().expect("text");
            let special = case["add_special_tokens"].as_bool().expect("flag");
            assert_eq!(
                tok.encode(text, special).expect("encode"),
                ids(&case["ids"]),
                "{text:?}"
            );
        }
        let chat = &r["chat"];
        let rendered = tok
            .apply_chat_template(&chat["messages"], true)
            .expect("render");
        assert_eq!(
            rendered,
            chat["rendered"].as_str().expect("text"),
            "{}",
            folder.display()
        );
        assert_eq!(
            tok.encode(&rendered, false).expect("encode"),
            ids(&chat["ids"])
        );
        for case in r["chat_cases"].as_array().expect("cases") {
            let extra = case["kwargs"].as_object().expect("kwargs");
            let add_prompt = case["add_generation_prompt"].as_bool().expect("flag");
            let got = tok
                .apply_chat_template_with(&case["messages"], add_prompt, extra)
                .expect("render");
            assert_eq!(
                got,
                case["rendered"].as_str().expect("text"),
                "{}: {extra:?}",
                folder.display()
            );
        }
        let first_two = Value::Array(chat["messages"].as_array().expect("list")[..2].to_vec());
        assert_eq!(
            tok.apply_chat_template(&first_two, false).expect("render"),
            chat["rendered_first_two_without_generation_prompt"]
                .as_str()
                .expect("text")
        );
    }
}

#[test]
fn bf16_weights_load_and_run_in_bf16() {
    for folder in fixtures() {
        let r = reference(&folder);
        if r["saved_dtype"] != "bfloat16" {
            continue;
        }
        let p = Pretrained::load(&folder, Some(DType::BF16), &Device::default()).expect("load");
        assert_eq!(p.model.dtype(), DType::BF16);
        let batch = Batch::left_padded(&[ids(&r["input_ids"])], 0);
        let logits = read_f32(p.model.forward(&batch).expect("forward")).expect("read");
        let want = floats(&r["logits_all"]);
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        // bf16 keeps 8 bits of mantissa: activations drift by a few percent of the logit scale.
        assert_close("bf16 logits", &folder, &logits, &want, 0.08 * scale);
    }
}

#[test]
fn save_then_load_is_identical() {
    let dir = std::env::temp_dir().join(format!("r1-model-save-{}", std::process::id()));
    for folder in fixtures() {
        let r = reference(&folder);
        let p = load(&folder);
        let out = dir.join(folder.file_name().expect("name"));
        p.save(&out, None).expect("save");
        for file in [
            "config.json",
            "model.safetensors",
            "generation_config.json",
            "tokenizer.json",
        ] {
            assert!(out.join(file).exists(), "{file} not written");
        }
        let q = load(&out);
        let a = p.model.named_weights().expect("weights");
        let b = q.model.named_weights().expect("weights");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.values, y.values, "{} changed", x.name);
        }
        let batch = Batch::left_padded(&[ids(&r["input_ids"])], 0);
        let l1 = read_f32(p.model.forward(&batch).expect("forward")).expect("read");
        let l2 = read_f32(q.model.forward(&batch).expect("forward")).expect("read");
        assert_eq!(l1, l2);
        if p.model.config().tie_word_embeddings {
            let st = r1_model::SafetensorsWeights::open(&out).expect("open");
            assert!(
                !st.contains("lm_head.weight"),
                "tied head must not be saved"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn greedy_generation_stops_on_eos_like_transformers() {
    for folder in fixtures() {
        let r = reference(&folder);
        let Some(g) = r.get("greedy_eos") else {
            continue;
        };
        let p = load(&folder);
        let eos = ids(&g["eos_token_ids"]);
        let config = GenerationConfig {
            max_new_tokens: g["max_new_tokens"].as_u64().expect("n") as usize,
            sampling: SamplingParams::greedy(),
            eos_token_ids: eos.clone(),
            pad_token_id: p.pad_token_id(),
            ..GenerationConfig::default()
        };
        let cases = g["cases"].as_array().expect("cases");
        let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["prompt_ids"])).collect();
        // All prompts in one batch: rows finish at different steps.
        let out = generate(&p.model, &prompts, &config, None).expect("generate");
        for (case, got) in cases.iter().zip(&out) {
            let want = ids(&case["completion_ids"]);
            assert_eq!(got.completion_ids, want, "{}", folder.display());
            let stopped = want.last().is_some_and(|t| eos.contains(t));
            let reason = if stopped {
                r1_model::FinishReason::Stop
            } else {
                r1_model::FinishReason::Length
            };
            assert_eq!(got.finish_reason, reason);
        }
    }
}

#[test]
fn legacy_rope_keys_give_the_same_logits() {
    // transformers 4 wrote `rope_theta` and `rope_scaling` at the top level; both spellings
    // must load to the same model.
    for folder in fixtures() {
        let text = std::fs::read_to_string(folder.join("config.json")).expect("config");
        let mut config: Value = serde_json::from_str(&text).expect("json");
        let Some(params) = config
            .as_object_mut()
            .and_then(|m| m.remove("rope_parameters"))
        else {
            continue;
        };
        let mut params = params.as_object().expect("object").clone();
        let theta = params.remove("rope_theta").expect("rope_theta");
        config["rope_theta"] = theta;
        if params.get("rope_type").and_then(Value::as_str) != Some("default") {
            let t = params.remove("rope_type").expect("type");
            params.insert("type".into(), t);
            config["rope_scaling"] = Value::Object(params);
        }
        let dir = std::env::temp_dir().join(format!(
            "r1-legacy-{}-{}",
            std::process::id(),
            folder.file_name().expect("name").to_string_lossy()
        ));
        std::fs::create_dir_all(&dir).expect("tmp");
        for entry in std::fs::read_dir(&folder).expect("read") {
            let p = entry.expect("entry").path();
            if p.file_name().is_some_and(|n| n != "config.json") {
                std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
            }
        }
        std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
        let r = reference(&folder);
        let p = load(&dir);
        let batch = Batch::left_padded(&[ids(&r["input_ids"])], 0);
        let logits = read_f32(p.model.forward(&batch).expect("forward")).expect("read");
        assert_close(
            "legacy-key logits",
            &folder,
            &logits,
            &floats(&r["logits_all"]),
            TOL,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
