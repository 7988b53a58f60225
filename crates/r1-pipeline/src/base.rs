//! Tiny from-scratch bases: a character-level tokenizer built from the run's data and a
//! seeded random Qwen2 / Llama decoder, saved as a Hugging Face folder that transformers loads
//! (`AutoTokenizer`, `AutoModelForCausalLM`) as well as r1.
//!
//! The tokenizer is a `WordLevel` model over single characters (a `Split` pre-tokenizer
//! isolating every character, a `Fuse` decoder), with `<pad>`, `</s>` (eos) and `<unk>` as
//! special tokens and the reasoning tags `<think>`, `</think>`, `<answer>`, `</answer>` as
//! whole tokens, so that a tag costs one step of generation, as it does in R1's tokenizer.

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::{DType, Device};
use r1_model::{
    CausalLm, GenerationDefaults, ModelConfig, RandomWeights, Tokenizer, save_pretrained,
};
use serde_json::{Map, Value, json};

use crate::error::{PipelineError, Result};

/// Special tokens, in id order.
pub const SPECIAL: [&str; 3] = ["<pad>", "</s>", "<unk>"];
/// Tags that are single tokens.
pub const TAGS: [&str; 4] = ["<think>", "</think>", "<answer>", "</answer>"];

/// Keys of a tiny architecture (`[base]` or a pretrain stage's `architecture`), with defaults:
/// the 1M-parameter decoder of the tiny R1 recipe.
pub fn default_architecture() -> Map<String, Value> {
    let v = json!({
        "model_type": "qwen2",
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "initializer_range": 0.02,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The architecture keys a tiny base accepts.
pub fn architecture_keys() -> Vec<String> {
    default_architecture().keys().cloned().collect()
}

/// The characters of `texts` outside the tags, sorted.
pub fn alphabet<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<char> {
    let mut chars = BTreeSet::new();
    for text in texts {
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(tag) = TAGS.iter().find(|t| rest.starts_with(**t)) {
                rest = &rest[tag.len()..];
                continue;
            }
            let mut it = rest.chars();
            if let Some(c) = it.next() {
                chars.insert(c);
            }
            rest = it.as_str();
        }
    }
    chars.into_iter().collect()
}

/// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` for a
/// character-level tokenizer over `alphabet` into `folder`; returns the vocabulary size.
pub fn write_char_tokenizer(alphabet: &[char], folder: &Path) -> Result<usize> {
    std::fs::create_dir_all(folder).map_err(|e| PipelineError::io(folder, e))?;
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (i, t) in SPECIAL.iter().chain(TAGS.iter()).enumerate() {
        vocab.insert((*t).to_string(), json!(i));
        added.push(json!({
            "id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": i < SPECIAL.len(),
        }));
    }
    for c in alphabet {
        let id = vocab.len();
        vocab.entry(c.to_string()).or_insert(json!(id));
    }
    let size = vocab.len();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Split",
            "pattern": {"Regex": "[\\s\\S]"},
            "behavior": "Isolated",
            "invert": false
        },
        "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    });
    let config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 1_000_000,
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": false,
    });
    let special = json!({"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"});
    for (name, value) in [
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", config),
        ("special_tokens_map.json", special),
    ] {
        let path = folder.join(name);
        let text = serde_json::to_string_pretty(&value).map_err(|e| PipelineError::io(&path, e))?;
        std::fs::write(&path, text).map_err(|e| PipelineError::io(&path, e))?;
    }
    Ok(size)
}

/// Checks a tiny architecture table: known keys only, and a config that r1-model accepts.
/// `at` says where the table is, for errors.
pub fn check_architecture(arch: &Map<String, Value>, at: &dyn Fn(&str) -> String) -> Result<()> {
    let keys = architecture_keys();
    for key in arch.keys() {
        if !keys.contains(key) {
            return Err(PipelineError::config(
                key.clone(),
                format!(
                    "{}: unknown architecture key (known: {})",
                    at(key),
                    keys.join(", ")
                ),
            ));
        }
    }
    let config = config_json(arch, 16);
    ModelConfig::from_map(config, Path::new("(architecture)")).map_err(|e| {
        PipelineError::config("architecture", format!("{}: {e}", at("architecture")))
    })?;
    Ok(())
}

fn config_json(arch: &Map<String, Value>, vocab_size: usize) -> Map<String, Value> {
    let mut config = default_architecture();
    for (k, v) in arch {
        config.insert(k.clone(), v.clone());
    }
    let class = match config.get("model_type").and_then(Value::as_str) {
        Some("llama") => "LlamaForCausalLM",
        Some("qwen3") => "Qwen3ForCausalLM",
        _ => "Qwen2ForCausalLM",
    };
    config.insert("architectures".into(), json!([class]));
    config.insert("vocab_size".into(), json!(vocab_size));
    config.insert("hidden_act".into(), json!("silu"));
    config.insert("eos_token_id".into(), json!(1));
    config.insert("pad_token_id".into(), json!(0));
    config.insert("bos_token_id".into(), Value::Null);
    config.insert("torch_dtype".into(), json!("float32"));
    config.insert("use_sliding_window".into(), json!(false));
    config.insert("attention_dropout".into(), json!(0.0));
    config
}

/// Builds a tiny base in `folder`: the character tokenizer over `alphabet` and a decoder of
/// `arch` with seeded random weights (normal with `initializer_range`, norms at one).
/// Returns the parameter count.
pub fn build_tiny_base(
    arch: &Map<String, Value>,
    alphabet: &[char],
    seed: u64,
    folder: &Path,
    device: &Device,
) -> Result<usize> {
    let _span = tracing::info_span!("tiny_base", folder = %folder.display()).entered();
    let vocab = write_char_tokenizer(alphabet, folder)?;
    let map = config_json(arch, vocab);
    let config = ModelConfig::from_map(map, &folder.join("config.json"))?;
    let model = CausalLm::from_source(&config, &mut RandomWeights::new(seed), DType::F32, device)?;
    let tokenizer = Tokenizer::from_folder(folder)?;
    let generation = GenerationDefaults {
        eos_token_ids: vec![1],
        pad_token_id: Some(0),
        bos_token_id: None,
        raw: None,
    };
    save_pretrained(&model, Some(&tokenizer), &generation, folder, None)?;
    let params = model.named_weights()?.iter().map(|w| w.values.len()).sum();
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_character_tokenizer_round_trips_and_keeps_tags_whole() {
        let dir = std::env::temp_dir().join(format!("r1-char-tok-{}", std::process::id()));
        let text = "6-0-4+5=<think>+06-0=+06;+06-4=+02</think><answer>7</answer>";
        let chars = alphabet([text]);
        assert!(!chars.contains(&'<') && chars.contains(&'+') && chars.contains(&';'));
        let size = write_char_tokenizer(&chars, &dir).expect("tokenizer");
        assert_eq!(size, SPECIAL.len() + TAGS.len() + chars.len());
        let tok = Tokenizer::from_folder(&dir).expect("loads");
        let ids = tok.encode(text, true).expect("encode");
        // One token per character outside the tags, one per tag.
        let tags = 4;
        let plain = text.chars().count() - "<think></think><answer></answer>".len();
        assert_eq!(ids.len(), plain + tags);
        assert_eq!(ids[0], tok.token_to_id("6").expect("6"));
        assert_eq!(
            ids.iter().filter(|&&i| i == 3).count(),
            1,
            "<think> is one token"
        );
        assert_eq!(tok.decode(&ids, false).expect("decode"), text);
        assert_eq!(tok.eos_token_id(), Some(1));
        assert_eq!(tok.pad_token_id(), Some(0));
        let with_eos = tok.encode("7</s>", true).expect("encode");
        assert_eq!(with_eos.last(), Some(&1));
        assert_eq!(tok.decode(&with_eos, true).expect("decode"), "7");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
