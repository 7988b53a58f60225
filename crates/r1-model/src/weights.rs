//! Reading and writing Hugging Face safetensors checkpoints.
//!
//! Tensors keep their Hugging Face names and PyTorch layout in the files; `Linear` weights are
//! transposed on the host to Burn's `[d_in, d_out]` when loaded and back when saved, so no key
//! remapping table is needed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};
use crate::rng::Rng;

/// How a parameter is initialised when no checkpoint provides it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Normal with mean 0 and this standard deviation (transformers' `initializer_range`).
    Normal(f64),
    /// All ones (norm weights).
    Ones,
    /// All zeros (biases).
    Zeros,
}

/// Where a model's parameters come from: a checkpoint, or a seeded random draw.
pub trait WeightSource {
    /// The tensor called `name`, with `shape` in PyTorch layout, as f32 host data.
    fn take(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Vec<f32>>;

    /// Called once every parameter has been taken: reports tensors nobody asked for.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Marks a tensor as known but unused (a tied `lm_head.weight`, say).
    fn skip(&mut self, _name: &str) {}
}

/// Seeded random weights, drawn in the order the model asks for them.
#[derive(Debug)]
pub struct RandomWeights {
    rng: Rng,
}

impl RandomWeights {
    /// A source drawing from a seeded generator.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
        }
    }
}

impl WeightSource for RandomWeights {
    fn take(&mut self, _name: &str, shape: &[usize], init: Init) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        Ok(match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal(std) => (0..n).map(|_| (self.rng.normal() * std) as f32).collect(),
        })
    }
}

struct Shard {
    path: PathBuf,
    mmap: Mmap,
}

/// Tensors of a local checkpoint folder: `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`.
pub struct SafetensorsWeights {
    folder: PathBuf,
    shards: Vec<Shard>,
    /// tensor name -> shard index
    index: HashMap<String, usize>,
    used: HashSet<String>,
}

impl std::fmt::Debug for SafetensorsWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsWeights")
            .field("folder", &self.folder)
            .field("tensors", &self.index.len())
            .finish()
    }
}

fn safetensors_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl SafetensorsWeights {
    /// Opens the checkpoint files of `folder` (memory-mapped; nothing is read yet).
    pub fn open(folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref().to_path_buf();
        let index_path = folder.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ModelError::Json {
                    path: index_path.clone(),
                    message: e.to_string(),
                })?;
            let map = value
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::Json {
                    path: index_path.clone(),
                    message: "expected an object `weight_map` of tensor name -> file".into(),
                })?;
            let mut files: Vec<String> = Vec::new();
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| ModelError::Json {
                    path: index_path.clone(),
                    message: format!("weight_map[`{name}`] is not a file name"),
                })?;
                if !files.iter().any(|f| f == file) {
                    files.push(file.to_string());
                }
            }
            files.into_iter().map(|f| folder.join(f)).collect()
        } else {
            let single = folder.join("model.safetensors");
            if !single.exists() {
                return Err(ModelError::io(
                    &single,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no model.safetensors or model.safetensors.index.json in this folder",
                    ),
                ));
            }
            vec![single]
        };
        let mut shards = Vec::new();
        let mut index = HashMap::new();
        for path in files {
            let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
            // SAFETY: the file is opened read-only and not modified while mapped; a concurrent
            // writer would be a user error that at worst yields wrong values.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
            let tensors = SafeTensors::deserialize(&mmap).map_err(|e| safetensors_err(&path, e))?;
            for name in tensors.names() {
                index.insert(name.to_string(), shards.len());
            }
            drop(tensors);
            shards.push(Shard { path, mmap });
        }
        Ok(Self {
            folder,
            shards,
            index,
            used: HashSet::new(),
        })
    }

    /// Names of every tensor in the checkpoint.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

impl WeightSource for SafetensorsWeights {
    fn take(&mut self, name: &str, shape: &[usize], _init: Init) -> Result<Vec<f32>> {
        let Some(&shard) = self.index.get(name) else {
            return Err(ModelError::MissingTensor {
                folder: self.folder.clone(),
                name: name.to_string(),
            });
        };
        let shard = &self.shards[shard];
        let tensors =
            SafeTensors::deserialize(&shard.mmap).map_err(|e| safetensors_err(&shard.path, e))?;
        let view = tensors
            .tensor(name)
            .map_err(|e| safetensors_err(&shard.path, e))?;
        if view.shape() != shape {
            return Err(ModelError::ShapeMismatch {
                path: shard.path.clone(),
                name: name.to_string(),
                found: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        let bytes = view.data();
        let values = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::UnsupportedDtype {
                    path: shard.path.clone(),
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        self.used.insert(name.to_string());
        Ok(values)
    }

    fn skip(&mut self, name: &str) {
        if self.index.contains_key(name) {
            self.used.insert(name.to_string());
        }
    }

    fn finish(&mut self) -> Result<()> {
        let mut unexpected: Vec<&str> = self
            .index
            .keys()
            .filter(|n| !self.used.contains(*n))
            // Old checkpoints carry the rotary buffer; transformers ignores it as well.
            .filter(|n| !n.ends_with("rotary_emb.inv_freq"))
            .map(String::as_str)
            .collect();
        if unexpected.is_empty() {
            return Ok(());
        }
        unexpected.sort_unstable();
        let total = unexpected.len();
        let mut names = unexpected
            .iter()
            .take(8)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if total > 8 {
            names.push_str(&format!(" and {} more", total - 8));
        }
        Err(ModelError::UnexpectedTensors {
            folder: self.folder.clone(),
            names,
        })
    }
}

/// Transposes a row-major `[rows, cols]` matrix into `[cols, rows]`.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut out = vec![0f32; values.len()];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// The dtype names transformers writes in `config.json`.
pub fn dtype_name(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("float32"),
        DType::BF16 => Ok("bfloat16"),
        DType::F16 => Ok("float16"),
        other => Err(ModelError::invalid(format!(
            "cannot save weights as {other:?}; use f32, bf16 or f16"
        ))),
    }
}

/// Parses `f32`, `bf16`, `f16` (or transformers' `float32`, `bfloat16`, `float16`).
pub fn parse_dtype(name: &str) -> Result<DType> {
    match name {
        "f32" | "float32" | "float" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" | "half" => Ok(DType::F16),
        other => Err(ModelError::invalid(format!(
            "unknown dtype `{other}`; use f32, bf16 or f16"
        ))),
    }
}

/// Writes named tensors (PyTorch layout, f32 host data) to one safetensors file in `dtype`,
/// atomically: a temporary file in the same folder is renamed over the target.
pub fn write_safetensors(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    dtype: DType,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let st_dtype = match dtype {
        DType::F32 => Dtype::F32,
        DType::BF16 => Dtype::BF16,
        DType::F16 => Dtype::F16,
        other => {
            return Err(ModelError::invalid(format!(
                "cannot save weights as {other:?}"
            )));
        }
    };
    let encoded: BTreeMap<String, (Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, values)| {
            let bytes = match dtype {
                DType::BF16 => values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                    .collect(),
                DType::F16 => values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
                _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            (name, (shape, bytes))
        })
        .collect();
    let mut views = Vec::with_capacity(encoded.len());
    for (name, (shape, bytes)) in &encoded {
        let view = safetensors::tensor::TensorView::new(st_dtype, shape.clone(), bytes)
            .map_err(|e| safetensors_err(path, e))?;
        views.push((name.clone(), view));
    }
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, metadata, &tmp).map_err(|e| safetensors_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))?;
    Ok(())
}

/// Converts host values to a [`TensorData`] of `shape`.
pub fn to_data(values: Vec<f32>, shape: &[usize]) -> TensorData {
    TensorData::new(values, shape.to_vec())
}
