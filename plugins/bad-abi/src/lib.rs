//! A library that exports the plugin entry point with an ABI version no host speaks, so that
//! the host's version check is tested. It must be refused before any other call.

use std::ffi::{c_char, c_void};

use r1_rewards::plugin::abi::PluginVTable;

unsafe extern "C" fn create(_: *const u8, _: usize) -> *mut c_void {
    // The host must never get here: it checks the version first.
    std::process::abort()
}
unsafe extern "C" fn score(
    _: *mut c_void,
    _: *const u8,
    _: usize,
    _: *mut *mut u8,
    _: *mut usize,
) -> i32 {
    std::process::abort()
}
unsafe extern "C" fn free(_: *mut c_void, _: *mut u8, _: usize) {}
unsafe extern "C" fn last_error(_: *mut c_void) -> *const c_char {
    std::ptr::null()
}
unsafe extern "C" fn destroy(_: *mut c_void) {}

static TABLE: PluginVTable = PluginVTable {
    abi_version: 999,
    struct_size: std::mem::size_of::<PluginVTable>() as u32,
    name: c"bad-abi".as_ptr(),
    create,
    score,
    free,
    last_error,
    destroy,
};

/// Entry point with a wrong version inside.
#[unsafe(no_mangle)]
pub extern "C" fn r1_reward_plugin_v1() -> *const PluginVTable {
    &TABLE
}
