//! Hugging Face checkpoint folders: `config.json`, safetensors weights (single or sharded),
//! tokenizer files and `generation_config.json`, loaded together and saved so that
//! `transformers` loads them back to the same logits.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use serde_json::Value;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::io::write_json;
use crate::model::CausalLm;
use crate::tokenizer::Tokenizer;
use crate::weights::{SafetensorsWeights, dtype_name, write_safetensors};

/// What `generation_config.json` says about special tokens.
#[derive(Debug, Clone, Default)]
pub struct GenerationDefaults {
    /// `eos_token_id`: an id or a list.
    pub eos_token_ids: Vec<u32>,
    /// `pad_token_id`.
    pub pad_token_id: Option<u32>,
    /// `bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// The file's JSON object, kept for saving.
    pub raw: Option<Value>,
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        None => Vec::new(),
    }
}

impl GenerationDefaults {
    /// Reads `generation_config.json` from `folder`; a missing file gives empty defaults.
    pub fn from_folder(folder: &Path) -> Result<Self> {
        let path = folder.join("generation_config.json");
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| ModelError::Json {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            eos_token_ids: ids(raw.get("eos_token_id")),
            pad_token_id: ids(raw.get("pad_token_id")).first().copied(),
            bos_token_id: ids(raw.get("bos_token_id")).first().copied(),
            raw: Some(raw),
        })
    }
}

/// A model with everything a checkpoint folder carries besides the weights.
#[derive(Debug)]
pub struct Pretrained {
    /// The network.
    pub model: CausalLm,
    /// The tokenizer, when the folder has `tokenizer.json`.
    pub tokenizer: Option<Tokenizer>,
    /// `generation_config.json`.
    pub generation: GenerationDefaults,
    /// Where it was loaded from.
    pub folder: PathBuf,
}

impl Pretrained {
    /// Loads a local checkpoint folder onto `device`, casting weights to `dtype`
    /// (f32 when `None`).
    pub fn load(folder: impl AsRef<Path>, dtype: Option<DType>, device: &Device) -> Result<Self> {
        let folder = folder.as_ref().to_path_buf();
        let _span = tracing::info_span!("load", folder = %folder.display()).entered();
        if !folder.is_dir() {
            return Err(ModelError::io(
                &folder,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a checkpoint folder"),
            ));
        }
        let config = ModelConfig::from_file(folder.join("config.json"))?;
        let mut weights = SafetensorsWeights::open(&folder)?;
        let model =
            CausalLm::from_source(&config, &mut weights, dtype.unwrap_or(DType::F32), device)?;
        let tokenizer = if folder.join("tokenizer.json").exists() {
            Some(Tokenizer::from_folder(&folder)?)
        } else {
            None
        };
        let generation = GenerationDefaults::from_folder(&folder)?;
        Ok(Self {
            model,
            tokenizer,
            generation,
            folder,
        })
    }

    /// Ids that end generation: `generation_config.json`'s, else `config.json`'s, else the
    /// tokenizer's eos token.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        if !self.generation.eos_token_ids.is_empty() {
            return self.generation.eos_token_ids.clone();
        }
        if !self.model.config().eos_token_ids.is_empty() {
            return self.model.config().eos_token_ids.clone();
        }
        self.tokenizer
            .as_ref()
            .and_then(Tokenizer::eos_token_id)
            .into_iter()
            .collect()
    }

    /// The id written into padding slots: the pad token, else the first eos id, else 0.
    pub fn pad_token_id(&self) -> u32 {
        self.generation
            .pad_token_id
            .or(self.model.config().pad_token_id)
            .or_else(|| self.tokenizer.as_ref().and_then(Tokenizer::pad_token_id))
            .or_else(|| self.eos_token_ids().first().copied())
            .unwrap_or(0)
    }

    /// Saves the folder: see [`save_pretrained`].
    pub fn save(&self, folder: impl AsRef<Path>, dtype: Option<DType>) -> Result<()> {
        save_pretrained(
            &self.model,
            self.tokenizer.as_ref(),
            &self.generation,
            folder.as_ref(),
            dtype,
        )
    }
}

/// Writes a Hugging Face folder: `config.json`, `model.safetensors` (in `dtype`, the model's
/// own when `None`), the tokenizer files and `generation_config.json`. Each file is written
/// atomically.
pub fn save_pretrained(
    model: &CausalLm,
    tokenizer: Option<&Tokenizer>,
    generation: &GenerationDefaults,
    folder: &Path,
    dtype: Option<DType>,
) -> Result<()> {
    let _span = tracing::info_span!("save", folder = %folder.display()).entered();
    std::fs::create_dir_all(folder).map_err(|e| ModelError::io(folder, e))?;
    let dtype = dtype.unwrap_or_else(|| model.dtype());
    let name = dtype_name(dtype)?;
    let tensors = model
        .named_weights()?
        .into_iter()
        .map(|w| (w.name, w.shape, w.values))
        .collect();
    let metadata = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    write_safetensors(
        &folder.join("model.safetensors"),
        tensors,
        dtype,
        Some(metadata),
    )?;
    let mut config = model.config().to_json(Some(name));
    if let Value::Object(map) = &mut config {
        map.entry("architectures")
            .or_insert_with(|| Value::from(vec![model.config().architecture.class_name()]));
    }
    write_json(&folder.join("config.json"), &config)?;
    let generation_json = match &generation.raw {
        Some(raw) => raw.clone(),
        None => {
            let c = model.config();
            let mut m = serde_json::Map::new();
            if let Some(b) = c.bos_token_id {
                m.insert("bos_token_id".into(), b.into());
            }
            match c.eos_token_ids.as_slice() {
                [] => {}
                [one] => {
                    m.insert("eos_token_id".into(), (*one).into());
                }
                many => {
                    m.insert("eos_token_id".into(), many.to_vec().into());
                }
            }
            Value::Object(m)
        }
    };
    write_json(&folder.join("generation_config.json"), &generation_json)?;
    if let Some(tok) = tokenizer {
        tok.save(folder)?;
    }
    Ok(())
}
