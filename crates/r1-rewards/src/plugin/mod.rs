//! Reward plugins: shared libraries that export one versioned C entry point.
//!
//! - [`abi`]: the `#[repr(C)]` table a plugin exports, and its evolution rules.
//! - [`sdk`]: what plugin authors use: implement [`crate::Reward`] and [`sdk::Plugin`], then call
//!   [`crate::export_reward!`], which writes every entry point inside `catch_unwind`.
//! - [`host`]: loading plugins with libloading and calling them safely.
//! - [`process`]: the out-of-process mode, for plugins that must not be able to crash the trainer.
//!
//! `docs/plugins.md` walks from `cargo new --lib` to a loaded plugin.

pub mod abi;
pub mod host;
pub mod process;
pub mod sdk;

pub use host::{PluginReward, from_table};
pub use process::ProcessPluginReward;
