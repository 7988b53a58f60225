//! `config.json` of Hugging Face decoders: Qwen2 / Qwen2.5 (`qwen2`), Qwen3 (`qwen3`) and
//! Llama-3.x (`llama`).
//!
//! Both the transformers-5 key `rope_parameters` and the legacy `rope_theta` / `rope_scaling`
//! keys are read. Anything r1 does not implement (another `model_type`, sliding-window attention,
//! an unknown rope type, an activation other than SiLU) is an error naming the key, never
//! silently ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// The decoder families r1 implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Qwen2 and Qwen2.5: biases on q/k/v, none on o.
    Qwen2,
    /// Qwen3: RMSNorm on each query and key head.
    Qwen3,
    /// Llama-3.x: optional `attention_bias` and `mlp_bias`.
    Llama,
}

impl Architecture {
    /// The `model_type` string of `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Llama => "llama",
        }
    }

    /// The `architectures` entry transformers uses for the causal-LM head.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
            Self::Llama => "LlamaForCausalLM",
        }
    }
}

/// How RoPE frequencies are scaled (`rope_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    Default,
    /// Position interpolation: frequencies divided by `factor`.
    Linear {
        /// Scaling factor.
        factor: f64,
    },
    /// Dynamic NTK: the base grows once the sequence passes `max_position_embeddings`
    /// (transformers' rule, recomputed from the longest position of each forward call).
    Dynamic {
        /// Scaling factor.
        factor: f64,
        /// `max_position_embeddings` of the config: the length beyond which the base grows.
        max_position_embeddings: usize,
    },
    /// Llama 3.1's three-regime scaling.
    Llama3 {
        /// Scaling factor for low frequencies.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are scaled fully.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length the model was trained with.
        original_max_position_embeddings: usize,
    },
    /// YaRN (Peng et al., 2023).
    Yarn {
        /// Scaling factor.
        factor: f64,
        /// Context length the model was trained with.
        original_max_position_embeddings: usize,
        /// Fast boundary of the ramp (rotations).
        beta_fast: f64,
        /// Slow boundary of the ramp (rotations).
        beta_slow: f64,
        /// Multiplier on cos and sin.
        attention_factor: f64,
        /// Round the ramp boundaries to integers (transformers' default).
        truncate: bool,
    },
}

impl RopeScaling {
    /// The `rope_type` string.
    pub fn rope_type(&self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Linear { .. } => "linear",
            Self::Dynamic { .. } => "dynamic",
            Self::Llama3 { .. } => "llama3",
            Self::Yarn { .. } => "yarn",
        }
    }
}

/// Rotary position embedding settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// `rope_theta`: the base of the frequencies.
    pub theta: f64,
    /// `partial_rotary_factor`: the fraction of each head that is rotated.
    pub partial_rotary_factor: f64,
    /// The scaling rule.
    pub scaling: RopeScaling,
}

/// A parsed `config.json`.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The decoder family.
    pub architecture: Architecture,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `hidden_size`.
    pub hidden_size: usize,
    /// `intermediate_size` of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// `num_hidden_layers`.
    pub num_hidden_layers: usize,
    /// `num_attention_heads`.
    pub num_attention_heads: usize,
    /// `num_key_value_heads` (grouped-query attention); defaults to `num_attention_heads`.
    pub num_key_value_heads: usize,
    /// `head_dim`; defaults to `hidden_size / num_attention_heads` (128 for Qwen3, as transformers).
    pub head_dim: usize,
    /// `max_position_embeddings`.
    pub max_position_embeddings: usize,
    /// `rms_norm_eps`.
    pub rms_norm_eps: f64,
    /// `tie_word_embeddings`: the output head reuses the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (always on for Qwen2, `attention_bias` otherwise).
    pub qkv_bias: bool,
    /// Bias on the output projection (`attention_bias` for Llama and Qwen3, never for Qwen2).
    pub o_bias: bool,
    /// `mlp_bias` (Llama only).
    pub mlp_bias: bool,
    /// RMSNorm on query and key heads (Qwen3).
    pub qk_norm: bool,
    /// Rotary embedding settings.
    pub rope: RopeConfig,
    /// `bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` (an id or a list of ids).
    pub eos_token_ids: Vec<u32>,
    /// `pad_token_id`.
    pub pad_token_id: Option<u32>,
    /// `dtype` / `torch_dtype` as written in the file.
    pub torch_dtype: Option<String>,
    /// `initializer_range`: the std of random initialisation.
    pub initializer_range: f64,
    /// The JSON object the config came from, kept so that saving preserves unknown keys.
    pub raw: Map<String, Value>,
}

struct Keys<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl Keys<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ModelError {
        ModelError::Config {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.err(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.usize_opt(key)?
            .ok_or_else(|| self.err(key, "required key is missing"))
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(key, format!("expected a number, found {v}"))),
        }
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(key, format!("expected a string, found {v}"))),
        }
    }

    fn ids(&self, key: &str) -> Result<Vec<u32>> {
        let bad = || self.err(key, "expected a token id or a list of token ids");
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as u32).ok_or_else(bad))
                .collect(),
            Some(v) => v.as_u64().map(|n| vec![n as u32]).ok_or_else(bad),
        }
    }
}

impl ModelConfig {
    /// Reads and validates `config.json` (a file, or a folder holding one).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = path.join("config.json");
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        Self::from_json_str(&text, &path)
    }

    /// Parses and validates a `config.json` text; `path` is used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|e| ModelError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let Value::Object(map) = value else {
            return Err(ModelError::Json {
                path: path.to_path_buf(),
                message: "expected a JSON object".into(),
            });
        };
        Self::from_map(map, path)
    }

    /// Validates a config given as a JSON object.
    pub fn from_map(map: Map<String, Value>, path: &Path) -> Result<Self> {
        let k = Keys { path, map: &map };
        let model_type = k
            .str_opt("model_type")?
            .ok_or_else(|| k.err("model_type", "required key is missing"))?;
        let architecture = match model_type {
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            "llama" => Architecture::Llama,
            other => {
                return Err(k.err(
                    "model_type",
                    format!("`{other}` is not supported; r1 implements qwen2, qwen3 and llama"),
                ));
            }
        };

        let hidden_act = k.str_opt("hidden_act")?.unwrap_or("silu");
        if hidden_act != "silu" {
            return Err(k.err(
                "hidden_act",
                format!("`{hidden_act}` is not supported; these decoders use `silu`"),
            ));
        }
        if matches!(architecture, Architecture::Qwen2 | Architecture::Qwen3)
            && k.bool_opt("use_sliding_window")?.unwrap_or(false)
        {
            return Err(k.err(
                "use_sliding_window",
                "sliding-window attention is not supported; set it to false",
            ));
        }
        if let Some(types) = k.get("layer_types") {
            let all_full = types
                .as_array()
                .is_some_and(|a| a.iter().all(|t| t.as_str() == Some("full_attention")));
            if !all_full {
                return Err(k.err(
                    "layer_types",
                    "only `full_attention` layers are supported (sliding-window attention is not)",
                ));
            }
        }
        if let Some(p) = k.f64_opt("attention_dropout")?
            && p != 0.0
        {
            return Err(k.err(
                "attention_dropout",
                "attention dropout is not supported; use 0.0",
            ));
        }
        if let Some(tp) = k.usize_opt("pretraining_tp")?
            && tp > 1
        {
            // transformers' tensor-parallel emulation splits matmuls without changing their
            // value; r1 computes the same products unsplit.
            tracing::debug!(
                pretraining_tp = tp,
                "ignoring pretraining_tp: it does not change the maths"
            );
        }

        let hidden_size = k.usize("hidden_size")?;
        let num_attention_heads = k.usize("num_attention_heads")?;
        if num_attention_heads == 0 {
            return Err(k.err("num_attention_heads", "must be positive"));
        }
        let num_key_value_heads = k
            .usize_opt("num_key_value_heads")?
            .unwrap_or(num_attention_heads);
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(k.err(
                "num_key_value_heads",
                format!(
                    "{num_key_value_heads} must be positive and divide num_attention_heads ({num_attention_heads})"
                ),
            ));
        }
        let default_head_dim = match architecture {
            Architecture::Qwen3 => 128,
            _ => hidden_size / num_attention_heads,
        };
        let head_dim = k.usize_opt("head_dim")?.unwrap_or(default_head_dim);
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(k.err("head_dim", format!("{head_dim} must be even and positive")));
        }
        let default_max_pos = match architecture {
            Architecture::Llama => 2048,
            _ => 32768,
        };
        let max_position_embeddings = k
            .usize_opt("max_position_embeddings")?
            .unwrap_or(default_max_pos);
        let attention_bias = k.bool_opt("attention_bias")?.unwrap_or(false);
        let (qkv_bias, o_bias, mlp_bias, qk_norm) = match architecture {
            Architecture::Qwen2 => (true, false, false, false),
            Architecture::Qwen3 => (attention_bias, attention_bias, false, true),
            Architecture::Llama => (
                attention_bias,
                attention_bias,
                k.bool_opt("mlp_bias")?.unwrap_or(false),
                false,
            ),
        };
        let rope = parse_rope(&k, max_position_embeddings)?;

        let config = Self {
            architecture,
            vocab_size: k.usize("vocab_size")?,
            hidden_size,
            intermediate_size: k.usize("intermediate_size")?,
            num_hidden_layers: k.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            max_position_embeddings,
            rms_norm_eps: k.f64_opt("rms_norm_eps")?.unwrap_or(1e-6),
            tie_word_embeddings: k.bool_opt("tie_word_embeddings")?.unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias,
            qk_norm,
            rope,
            bos_token_id: k.ids("bos_token_id")?.first().copied(),
            eos_token_ids: k.ids("eos_token_id")?,
            pad_token_id: k.ids("pad_token_id")?.first().copied(),
            torch_dtype: match k.str_opt("dtype")? {
                Some(d) => Some(d.to_string()),
                None => k.str_opt("torch_dtype")?.map(str::to_string),
            },
            initializer_range: k.f64_opt("initializer_range")?.unwrap_or(0.02),
            raw: map.clone(),
        };
        for (key, v) in [
            ("vocab_size", config.vocab_size),
            ("hidden_size", config.hidden_size),
            ("intermediate_size", config.intermediate_size),
        ] {
            if v == 0 {
                return Err(k.err(key, "must be positive"));
            }
        }
        Ok(config)
    }

    /// The JSON object to write as `config.json`: the loaded keys, with the dtype updated.
    pub fn to_json(&self, dtype: Option<&str>) -> Value {
        let mut map = self.raw.clone();
        if let Some(d) = dtype {
            map.insert("torch_dtype".into(), Value::String(d.into()));
            if map.contains_key("dtype") {
                map.insert("dtype".into(), Value::String(d.into()));
            }
        }
        Value::Object(map)
    }

    /// Number of query heads sharing each key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Number of rotated dimensions in each head.
    pub fn rotary_dim(&self) -> usize {
        let d = (self.head_dim as f64 * self.rope.partial_rotary_factor) as usize;
        d - d % 2
    }
}

fn parse_rope(k: &Keys<'_>, max_position_embeddings: usize) -> Result<RopeConfig> {
    // transformers 5 writes everything under `rope_parameters`; older files use top-level
    // `rope_theta` plus an optional `rope_scaling` object.
    let (params_key, params) = match (k.get("rope_parameters"), k.get("rope_scaling")) {
        (Some(p), _) => ("rope_parameters", Some(p)),
        (None, Some(s)) => ("rope_scaling", Some(s)),
        (None, None) => ("rope_scaling", None),
    };
    let empty = Map::new();
    let params = match params {
        None => &empty,
        Some(Value::Object(m)) => m,
        Some(v) => return Err(k.err(params_key, format!("expected an object, found {v}"))),
    };
    let sub = Keys {
        path: k.path,
        map: params,
    };
    let sub_err = |key: &str, msg: String| k.err(&format!("{params_key}.{key}"), msg);
    let num = |key: &str| -> Result<Option<f64>> {
        sub.f64_opt(key)
            .map_err(|_| sub_err(key, "expected a number".into()))
    };
    let theta = match num("rope_theta")? {
        Some(t) => t,
        None => k.f64_opt("rope_theta")?.unwrap_or(10000.0),
    };
    if theta <= 1.0 {
        return Err(k.err("rope_theta", format!("{theta} must be greater than 1")));
    }
    let partial_rotary_factor = match num("partial_rotary_factor")? {
        Some(f) => f,
        None => k.f64_opt("partial_rotary_factor")?.unwrap_or(1.0),
    };
    if !(partial_rotary_factor > 0.0 && partial_rotary_factor <= 1.0) {
        return Err(k.err("partial_rotary_factor", "must be in (0, 1]"));
    }
    let rope_type = match (sub.get("rope_type"), sub.get("type")) {
        (Some(Value::String(t)), _) | (None, Some(Value::String(t))) => t.as_str(),
        (None, None) => "default",
        (Some(v), _) | (None, Some(v)) => {
            return Err(sub_err(
                "rope_type",
                format!("expected a string, found {v}"),
            ));
        }
    };
    let factor = || -> Result<f64> {
        let f = num("factor")?
            .ok_or_else(|| sub_err("factor", format!("rope type `{rope_type}` needs a factor")))?;
        if f < 1.0 {
            return Err(sub_err("factor", format!("{f} must be at least 1")));
        }
        Ok(f)
    };
    // transformers moves `original_max_position_embeddings` into the rope parameters for llama3
    // and yarn, preferring a top-level key, and falls back on `max_position_embeddings`.
    let original = || -> Result<usize> {
        if let Some(n) = k.usize_opt("original_max_position_embeddings")? {
            return Ok(n);
        }
        match sub.usize_opt("original_max_position_embeddings") {
            Ok(Some(n)) if n > 0 => Ok(n),
            Ok(None) => Ok(max_position_embeddings),
            _ => Err(sub_err(
                "original_max_position_embeddings",
                "expected a positive integer".into(),
            )),
        }
    };
    let scaling = match rope_type {
        "default" => RopeScaling::Default,
        "linear" => RopeScaling::Linear { factor: factor()? },
        "dynamic" => RopeScaling::Dynamic {
            factor: factor()?,
            max_position_embeddings,
        },
        "llama3" => {
            let low = num("low_freq_factor")?
                .ok_or_else(|| sub_err("low_freq_factor", "llama3 rope needs it".into()))?;
            let high = num("high_freq_factor")?
                .ok_or_else(|| sub_err("high_freq_factor", "llama3 rope needs it".into()))?;
            if high <= low {
                return Err(sub_err(
                    "high_freq_factor",
                    format!("{high} must be greater than low_freq_factor ({low})"),
                ));
            }
            RopeScaling::Llama3 {
                factor: factor()?,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: original()?,
            }
        }
        "yarn" => {
            let original_max = original()?;
            // DeepSeek-V3 style files may leave the factor out: it is then the ratio of the two
            // context lengths, as transformers computes it.
            let factor = match num("factor")? {
                Some(f) if f > 0.0 => f,
                Some(f) => return Err(sub_err("factor", format!("{f} must be positive"))),
                None => max_position_embeddings as f64 / original_max as f64,
            };
            let mscale = num("mscale")?;
            let mscale_all_dim = num("mscale_all_dim")?;
            let get_mscale = |scale: f64, m: f64| {
                if scale <= 1.0 {
                    1.0
                } else {
                    0.1 * m * scale.ln() + 1.0
                }
            };
            let attention_factor = match num("attention_factor")? {
                Some(a) => a,
                None => match (mscale, mscale_all_dim) {
                    (Some(m), Some(a)) if m != 0.0 && a != 0.0 => {
                        get_mscale(factor, m) / get_mscale(factor, a)
                    }
                    _ => get_mscale(factor, 1.0),
                },
            };
            // `beta_fast or 32`: a zero falls back on the default too.
            let beta = |key: &str, default: f64| -> Result<f64> {
                Ok(num(key)?.filter(|b| *b != 0.0).unwrap_or(default))
            };
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: original_max,
                beta_fast: beta("beta_fast", 32.0)?,
                beta_slow: beta("beta_slow", 1.0)?,
                attention_factor,
                truncate: sub.bool_opt("truncate").ok().flatten().unwrap_or(true),
            }
        }
        other => {
            return Err(sub_err(
                "rope_type",
                format!(
                    "`{other}` is not supported; r1 implements default, linear, dynamic, llama3 and yarn"
                ),
            ));
        }
    };
    Ok(RopeConfig {
        theta,
        partial_rotary_factor,
        scaling,
    })
}

/// Path of `config.json` inside a checkpoint folder.
pub fn config_path(folder: &Path) -> PathBuf {
    folder.join("config.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_json_str(&v.to_string(), Path::new("config.json"))
    }

    fn base(model_type: &str) -> Value {
        json!({"model_type": model_type, "vocab_size": 32, "hidden_size": 16,
               "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
               "num_key_value_heads": 2})
    }

    fn key_of(e: ModelError) -> String {
        match e {
            ModelError::Config { key, .. } => key,
            other => panic!("expected a config error, got {other}"),
        }
    }

    #[test]
    fn legacy_and_transformers5_rope_keys_agree() {
        let mut legacy = base("llama");
        legacy["rope_theta"] = json!(500000.0);
        legacy["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut new = base("llama");
        new["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let (a, b) = (parse(legacy).expect("legacy"), parse(new).expect("new"));
        assert_eq!(a.rope, b.rope);
        assert_eq!(a.rope.theta, 500000.0);
        // `type` is the oldest spelling of `rope_type`.
        let mut old = base("qwen2");
        old["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
        assert_eq!(
            parse(old).expect("old").rope.scaling,
            RopeScaling::Linear { factor: 2.0 }
        );
    }

    #[test]
    fn architecture_defaults_follow_transformers() {
        let q2 = parse(base("qwen2")).expect("qwen2");
        assert!(q2.qkv_bias && !q2.o_bias && !q2.qk_norm);
        assert_eq!(q2.head_dim, 4);
        let q3 = parse(base("qwen3")).expect("qwen3");
        assert!(q3.qk_norm && !q3.qkv_bias);
        assert_eq!(q3.head_dim, 128, "Qwen3Config defaults head_dim to 128");
        let mut l = base("llama");
        l["attention_bias"] = json!(true);
        l["mlp_bias"] = json!(true);
        l["eos_token_id"] = json!([128001, 128009]);
        let l = parse(l).expect("llama");
        assert!(l.qkv_bias && l.o_bias && l.mlp_bias);
        assert_eq!(l.eos_token_ids, vec![128001, 128009]);
    }

    #[test]
    fn unsupported_options_name_their_key() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"model_type": "mistral"}), "model_type"),
            (json!({"use_sliding_window": true}), "use_sliding_window"),
            (
                json!({"layer_types": ["full_attention", "sliding_attention"]}),
                "layer_types",
            ),
            (json!({"hidden_act": "gelu"}), "hidden_act"),
            (
                json!({"rope_parameters": {"rope_type": "longrope", "rope_theta": 1e4}}),
                "rope_parameters.rope_type",
            ),
            (
                json!({"rope_scaling": {"rope_type": "linear"}}),
                "rope_scaling.factor",
            ),
            (json!({"num_key_value_heads": 3}), "num_key_value_heads"),
            (json!({"vocab_size": "big"}), "vocab_size"),
            (json!({"attention_dropout": 0.1}), "attention_dropout"),
        ];
        for (patch, key) in cases {
            let mut v = base("qwen2");
            for (k, x) in patch.as_object().expect("object") {
                v[k] = x.clone();
            }
            assert_eq!(key_of(parse(v).expect_err("must fail")), key);
        }
        let mut missing = base("llama");
        missing
            .as_object_mut()
            .expect("object")
            .remove("hidden_size");
        assert_eq!(
            key_of(parse(missing).expect_err("must fail")),
            "hidden_size"
        );
    }

    #[test]
    fn yarn_attention_factor_and_defaults() {
        let mut v = base("qwen2");
        v["max_position_embeddings"] = json!(131072);
        v["rope_parameters"] = json!({"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
            "original_max_position_embeddings": 32768});
        let c = parse(v).expect("yarn");
        match c.rope.scaling {
            RopeScaling::Yarn {
                attention_factor,
                beta_fast,
                beta_slow,
                truncate,
                ..
            } => {
                assert!((attention_factor - (0.1 * 4f64.ln() + 1.0)).abs() < 1e-12);
                assert_eq!((beta_fast, beta_slow, truncate), (32.0, 1.0, true));
            }
            other => panic!("expected yarn, got {other:?}"),
        }
    }
}
