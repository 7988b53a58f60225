//! The plugin ABI, version 1.
//!
//! A plugin is a `cdylib` exporting `r1_reward_plugin_v1`, a function returning a pointer to a
//! static [`PluginVTable`]. The host reads `abi_version` and `struct_size` before anything else
//! and refuses a table it does not understand.
//!
//! Evolution is append-only: a new version may add fields at the end of the table (and bump
//! `abi_version`), never reorder or change existing ones; `struct_size` tells the host how many
//! fields the plugin provides.
//!
//! Data crosses the boundary as UTF-8 JSON: the config object for `create`, an array of
//! [`crate::RewardInput`] objects for `score`, and an array of numbers or `null` back. Memory is
//! freed by whoever allocated it: the plugin owns the buffers it returns (released with `free`),
//! the host owns what it passes in.

use std::ffi::{c_char, c_void};

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The exported symbol (NUL-terminated).
pub const ENTRY_SYMBOL: &[u8] = b"r1_reward_plugin_v1\0";

/// Status codes of `score`.
pub mod status {
    /// Success: `out` and `out_len` hold the result.
    pub const OK: i32 = 0;
    /// The reward returned an error: read `last_error`.
    pub const ERROR: i32 = 1;
    /// The reward panicked: read `last_error`.
    pub const PANIC: i32 = 2;
}

/// The function table of a plugin.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// [`ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// `size_of::<PluginVTable>()` as the plugin knows it.
    pub struct_size: u32,
    /// The plugin's name, NUL-terminated, static.
    pub name: *const c_char,
    /// Builds an instance from a JSON config; returns null on failure (then
    /// `last_error(null)` says why).
    pub create: unsafe extern "C" fn(config: *const u8, len: usize) -> *mut c_void,
    /// Scores a JSON batch; on [`status::OK`] writes a plugin-owned buffer to `out`/`out_len`.
    pub score: unsafe extern "C" fn(
        instance: *mut c_void,
        batch: *const u8,
        len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> i32,
    /// Releases a buffer returned by `score`.
    pub free: unsafe extern "C" fn(instance: *mut c_void, ptr: *mut u8, len: usize),
    /// The last error of `instance` (or of `create` on this thread when null), NUL-terminated,
    /// valid until the next call; null when there is none.
    pub last_error: unsafe extern "C" fn(instance: *mut c_void) -> *const c_char,
    /// Destroys an instance.
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
}

// SAFETY: the table is immutable static data with function pointers and a static string.
unsafe impl Sync for PluginVTable {}
// SAFETY: as above.
unsafe impl Send for PluginVTable {}

/// The signature of the exported entry point.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginVTable;
