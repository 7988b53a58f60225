//! The plugin SDK: implement [`Plugin`] (and [`crate::Reward`]) for your type and call
//! [`crate::export_reward!`] once in your `cdylib` crate.
//!
//! ```ignore
//! use r1_rewards::{Reward, RewardInput, Result, export_reward, plugin::sdk::Plugin};
//!
//! struct Shouting;
//! impl Reward for Shouting {
//!     fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Option<f32>>> {
//!         Ok(inputs.iter().map(|i| Some(if i.completion.ends_with('!') { 1.0 } else { 0.0 })).collect())
//!     }
//! }
//! impl Plugin for Shouting {
//!     fn create(_config: serde_json::Value) -> std::result::Result<Self, String> { Ok(Shouting) }
//! }
//! export_reward!(Shouting, "shouting");
//! ```

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::abi::status;
use crate::{Reward, RewardInput};

/// A reward that can be built from a JSON config inside a plugin.
pub trait Plugin: Reward + Sized + 'static {
    /// Builds the reward from the `[[reward]]` table's keys (as JSON).
    fn create(config: serde_json::Value) -> Result<Self, String>;
}

thread_local! {
    static CREATE_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn c_string(msg: &str) -> CString {
    CString::new(msg.replace('\0', " ")).unwrap_or_default()
}

/// The message of a caught panic (`&str` or `String` payloads; "unknown panic" otherwise).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// One plugin instance: the reward plus its last error.
pub struct Instance<T> {
    reward: T,
    error: Option<CString>,
}

/// `create` for `T`.
///
/// # Safety
/// `config` must point to `len` readable bytes.
pub unsafe extern "C" fn create<T: Plugin>(config: *const u8, len: usize) -> *mut c_void {
    let result = catch_unwind(|| {
        // SAFETY: the caller passes a valid buffer.
        let bytes = unsafe { std::slice::from_raw_parts(config, len) };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("config is not JSON: {e}"))?;
        T::create(value)
    });
    let outcome = match result {
        Ok(Ok(reward)) => {
            return Box::into_raw(Box::new(Instance {
                reward,
                error: None,
            })) as *mut c_void;
        }
        Ok(Err(e)) => e,
        Err(p) => format!("panicked in create: {}", panic_message(&*p)),
    };
    CREATE_ERROR.with(|c| *c.borrow_mut() = Some(c_string(&outcome)));
    std::ptr::null_mut()
}

/// `score` for `T`.
///
/// # Safety
/// `instance` must come from [`create`]; `batch` must point to `len` bytes; `out`, `out_len`
/// must be writable.
pub unsafe extern "C" fn score<T: Plugin>(
    instance: *mut c_void,
    batch: *const u8,
    len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: the host passes an instance returned by `create`.
    let inst = unsafe { &mut *(instance as *mut Instance<T>) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller passes a valid buffer.
        let bytes = unsafe { std::slice::from_raw_parts(batch, len) };
        let inputs: Vec<RewardInput> = serde_json::from_slice(bytes)
            .map_err(|e| format!("batch is not a JSON array of inputs: {e}"))?;
        let scores = inst.reward.score(&inputs).map_err(|e| e.to_string())?;
        // JSON has no NaN: it would arrive as `null` ("does not apply") without this check.
        if let Some(bad) = scores.iter().flatten().find(|v| !v.is_finite()) {
            return Err(format!("returned a non-finite score ({bad})"));
        }
        serde_json::to_vec(&scores).map_err(|e| e.to_string())
    }));
    match result {
        Ok(Ok(buf)) => {
            let mut buf = buf.into_boxed_slice();
            // SAFETY: out pointers are writable (caller contract).
            unsafe {
                *out_len = buf.len();
                *out = buf.as_mut_ptr();
            }
            std::mem::forget(buf);
            inst.error = None;
            status::OK
        }
        Ok(Err(e)) => {
            inst.error = Some(c_string(&e));
            status::ERROR
        }
        Err(p) => {
            inst.error = Some(c_string(&format!("panicked: {}", panic_message(&*p))));
            status::PANIC
        }
    }
}

/// `free` for `T`.
///
/// # Safety
/// `ptr`/`len` must come from a successful [`score`] of this plugin and be freed once.
pub unsafe extern "C" fn free<T: Plugin>(_instance: *mut c_void, ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: reconstructs the boxed slice leaked by `score`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    });
}

/// `last_error` for `T`.
///
/// # Safety
/// `instance` is null or comes from [`create`].
pub unsafe extern "C" fn last_error<T: Plugin>(instance: *mut c_void) -> *const c_char {
    if instance.is_null() {
        return CREATE_ERROR.with(|c| c.borrow().as_ref().map_or(std::ptr::null(), |s| s.as_ptr()));
    }
    // SAFETY: the host passes an instance returned by `create`.
    let inst = unsafe { &*(instance as *const Instance<T>) };
    inst.error.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// `destroy` for `T`.
///
/// # Safety
/// `instance` comes from [`create`] and is destroyed once.
pub unsafe extern "C" fn destroy<T: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: reconstructs the box leaked by `create`.
        drop(unsafe { Box::from_raw(instance as *mut Instance<T>) });
    });
}

/// Exports a [`Plugin`] type as a reward plugin: `export_reward!(MyReward, "my_reward");`.
///
/// Generates the `r1_reward_plugin_v1` entry point and a static function table whose every
/// function catches panics and reports them through `last_error`.
#[macro_export]
macro_rules! export_reward {
    ($ty:ty, $name:literal) => {
        #[doc(hidden)]
        pub static R1_REWARD_PLUGIN_VTABLE: $crate::plugin::abi::PluginVTable =
            $crate::plugin::abi::PluginVTable {
                abi_version: $crate::plugin::abi::ABI_VERSION,
                struct_size: ::std::mem::size_of::<$crate::plugin::abi::PluginVTable>() as u32,
                name: concat!($name, "\0").as_ptr() as *const ::std::ffi::c_char,
                create: $crate::plugin::sdk::create::<$ty>,
                score: $crate::plugin::sdk::score::<$ty>,
                free: $crate::plugin::sdk::free::<$ty>,
                last_error: $crate::plugin::sdk::last_error::<$ty>,
                destroy: $crate::plugin::sdk::destroy::<$ty>,
            };

        /// The plugin entry point (ABI version 1).
        #[unsafe(no_mangle)]
        pub extern "C" fn r1_reward_plugin_v1() -> *const $crate::plugin::abi::PluginVTable {
            &R1_REWARD_PLUGIN_VTABLE
        }
    };
}
