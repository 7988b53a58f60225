//! Loading reward plugins and calling them safely.

use std::ffi::{CStr, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::abi::{ABI_VERSION, ENTRY_SYMBOL, EntryFn, PluginVTable, status};
use crate::error::{Result, RewardError};
use crate::{Reward, RewardInput};

/// Libraries stay loaded for the life of the process: unloading a library whose code may still
/// be referenced (a thread it started, a destructor it registered) is undefined behaviour.
fn keep_loaded(lib: libloading::Library) {
    static LIBS: OnceLock<Mutex<Vec<libloading::Library>>> = OnceLock::new();
    if let Ok(mut v) = LIBS.get_or_init(|| Mutex::new(Vec::new())).lock() {
        v.push(lib);
    }
}

struct Handle(*mut c_void);
// SAFETY: calls on the instance are serialised by the Mutex around it.
unsafe impl Send for Handle {}

/// A reward implemented by a plugin loaded in this process.
pub struct PluginReward {
    label: String,
    vtable: &'static PluginVTable,
    instance: Mutex<Handle>,
}

impl std::fmt::Debug for PluginReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginReward")
            .field("plugin", &self.label)
            .finish()
    }
}

fn err(label: &str, message: impl Into<String>) -> RewardError {
    RewardError::Plugin {
        plugin: label.to_string(),
        message: message.into(),
    }
}

impl PluginReward {
    /// Loads the library at `path`, checks its ABI and creates an instance with `config`.
    pub fn load(path: &Path, config: &serde_json::Value) -> Result<Self> {
        let label = path.display().to_string();
        if !path.exists() {
            return Err(err(
                &label,
                "no such file (build plugins with `cargo xtask plugins`)",
            ));
        }
        // SAFETY: loading a library runs its initialisers; plugins are trusted code the user
        // named in the config (use the out-of-process mode for untrusted ones).
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| err(&label, format!("cannot load: {e}")))?;
        // SAFETY: the symbol's type is fixed by ABI version 1.
        let entry: EntryFn = unsafe {
            *lib.get::<EntryFn>(ENTRY_SYMBOL).map_err(|_| {
                err(
                    &label,
                    "not an r1 reward plugin: it does not export `r1_reward_plugin_v1`",
                )
            })?
        };
        // SAFETY: the entry point takes no arguments and returns a static table.
        let table = unsafe { entry() };
        if table.is_null() {
            return Err(err(&label, "the entry point returned no table"));
        }
        // Read the version and size first, through raw reads, before trusting the layout.
        // SAFETY: every version of the table starts with these two u32 fields.
        let (version, size) = unsafe {
            let p = table as *const u32;
            (p.read(), p.add(1).read())
        };
        if version != ABI_VERSION {
            return Err(err(
                &label,
                format!(
                    "ABI version {version}, this host speaks {ABI_VERSION}: rebuild the plugin against this r1"
                ),
            ));
        }
        if (size as usize) < std::mem::size_of::<PluginVTable>() {
            return Err(err(
                &label,
                format!("function table of {size} bytes is too small"),
            ));
        }
        // SAFETY: checked version and size; the table is static in the (never unloaded) library.
        let vtable: &'static PluginVTable = unsafe { &*table };
        keep_loaded(lib);
        // SAFETY: `name` is a static NUL-terminated string per the ABI.
        let name = unsafe { CStr::from_ptr(vtable.name) }
            .to_string_lossy()
            .into_owned();
        let label = format!("{name} ({})", path.display());
        let config = serde_json::to_vec(config).map_err(|e| err(&label, e.to_string()))?;
        // SAFETY: valid buffer for the duration of the call.
        let instance = unsafe { (vtable.create)(config.as_ptr(), config.len()) };
        if instance.is_null() {
            // SAFETY: null asks for the create error of this thread.
            let msg = unsafe { read_error(vtable, std::ptr::null_mut()) };
            return Err(err(&label, format!("create failed: {msg}")));
        }
        Ok(Self {
            label,
            vtable,
            instance: Mutex::new(Handle(instance)),
        })
    }

    /// `name (path)` of the plugin.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// # Safety
/// `instance` is null or a live instance of `vtable`.
unsafe fn read_error(vtable: &PluginVTable, instance: *mut c_void) -> String {
    // SAFETY: per the ABI, a null or NUL-terminated string valid until the next call.
    unsafe {
        let p = (vtable.last_error)(instance);
        if p.is_null() {
            "no error message".into()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl Reward for PluginReward {
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
        let batch = serde_json::to_vec(inputs).map_err(|e| err(&self.label, e.to_string()))?;
        let guard = self
            .instance
            .lock()
            .map_err(|_| err(&self.label, "an earlier call panicked in the host"))?;
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len = 0usize;
        // SAFETY: live instance, valid buffers, serialised by the lock.
        let code = unsafe {
            (self.vtable.score)(guard.0, batch.as_ptr(), batch.len(), &mut out, &mut out_len)
        };
        match code {
            status::OK => {}
            status::PANIC => {
                // SAFETY: live instance.
                let msg = unsafe { read_error(self.vtable, guard.0) };
                return Err(err(&self.label, format!("plugin panicked: {msg}")));
            }
            _ => {
                // SAFETY: live instance.
                let msg = unsafe { read_error(self.vtable, guard.0) };
                return Err(err(&self.label, format!("plugin error: {msg}")));
            }
        }
        if out.is_null() {
            return Err(err(&self.label, "plugin returned no buffer"));
        }
        // SAFETY: plugin-owned buffer of out_len bytes, copied, then handed back to the plugin.
        let bytes = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
        // SAFETY: returning the buffer to its allocator, once.
        unsafe { (self.vtable.free)(guard.0, out, out_len) };
        let scores: Vec<Option<f32>> = serde_json::from_slice(&bytes).map_err(|e| {
            err(
                &self.label,
                format!("scores are not a JSON array of numbers or null: {e}"),
            )
        })?;
        if scores.len() != inputs.len() {
            return Err(err(
                &self.label,
                format!(
                    "returned {} scores for {} inputs",
                    scores.len(),
                    inputs.len()
                ),
            ));
        }
        Ok(scores)
    }
}

impl Drop for PluginReward {
    fn drop(&mut self) {
        if let Ok(h) = self.instance.get_mut() {
            // SAFETY: the instance is live and destroyed once.
            unsafe { (self.vtable.destroy)(h.0) };
        }
    }
}

/// Builds a plugin reward from a `[[reward]]` table: `path` (relative to the config's folder),
/// and every other key but `name`, `kind`, `weight`, `gate`, `gate_min` passed to the plugin as
/// its JSON config.
pub fn from_table(
    table: &toml::Table,
    base: &Path,
) -> std::result::Result<Arc<dyn Reward>, String> {
    let path = table
        .get("path")
        .and_then(|v| v.as_str())
        .ok_or("a plugin needs `path = \"path/to/libplugin.so\"`")?;
    let mut full = PathBuf::from(path);
    if full.is_relative() {
        full = base.join(full);
    }
    let mut config = serde_json::Map::new();
    for (k, v) in table {
        if !matches!(
            k.as_str(),
            "name" | "kind" | "weight" | "gate" | "gate_min" | "path"
        ) {
            config.insert(
                k.clone(),
                serde_json::to_value(v).map_err(|e| e.to_string())?,
            );
        }
    }
    let reward =
        PluginReward::load(&full, &serde_json::Value::Object(config)).map_err(|e| e.to_string())?;
    Ok(Arc::new(reward))
}
