//! # shouwang-ffi
//!
//! The API the Android and iOS apps call, exported with uniffi proc-macros. It holds no domain
//! logic: every rule, form, merge and sync step lives in `shouwang-core` and the device side of
//! `shouwang-relay`; this crate converts types, owns one async runtime and turns callbacks into
//! listener calls.
//!
//! - [`ShouwangClient`] ([`client`]): one device's archive — open or join, children, due work,
//!   a child's file, records, conflicts, sync with the hub or a nearby device, listeners.
//! - [`ShouwangError`] ([`error`]): the one error enum; every message is a Chinese sentence
//!   with no personal data.
//! - [`privacy`]: guardian consent, the school's 个人信息保护负责人, the lost-phone report.
//! - [`TaskHandle`] ([`tasks`]): what a listener registration returns; dropping or closing it
//!   ends the subscription.
//! - [`record_kinds`], [`profile_sections`], [`progress_form`] ([`forms`]): the forms, so the
//!   app builds its screens from the same field lists the core validates against.
//!
//! One tokio runtime (two workers), built on first use, runs every network future
//! ([`runtime`]). Async functions are plain uniffi futures that await a task on that runtime;
//! when the foreign side cancels (a Kotlin coroutine is cancelled, a Swift `Task` too), uniffi
//! drops the future and the task is aborted at its next await point. Store writes are single
//! SQLite transactions, so an aborted sync leaves the store consistent.

uniffi::setup_scaffolding!();

pub mod client;
pub mod departure;
pub mod error;
pub mod forms;
pub mod live;
pub mod privacy;
pub mod runtime;
pub mod tasks;
pub mod types;

pub use client::ShouwangClient;
pub use error::ShouwangError;
pub use forms::{profile_sections, progress_form, record_kinds};
pub use tasks::{ChangeListener, JoinListener, PeerListener, SyncListener, TaskHandle};

use shouwang_core::store::StoreKey;

/// A new random 32-byte key for a store: the app keeps it in the platform keystore (Android
/// Keystore-wrapped, iOS Keychain) and passes it to [`ShouwangClient::open`] or
/// [`ShouwangClient::join`].
#[uniffi::export]
pub fn generate_store_key() -> Vec<u8> {
    StoreKey::generate().as_bytes().to_vec()
}

/// Whether a store has been set up at `path` (joined, or copied from a school file). An
/// encrypted store counts even without its key. Nothing is written. (A join cut off while
/// writing the store leaves one that counts, but that `open` answers with `NotEnrolled`:
/// joining again with the same invite and key goes over it.)
#[uniffi::export]
pub fn store_exists(path: String) -> Result<bool, ShouwangError> {
    Ok(shouwang_core::Archive::exists(std::path::Path::new(&path))?)
}
