//! # shouwang-core
//!
//! The shared core of 守望 (Shouwang): local-first care records for rural left-behind children.
//!
//! - [`doc`]: the archive as automerge documents (layout, merge rules, conflicts).
//! - [`kinds`] and [`forms`]: the sections of a child's file and the kinds of care record, each
//!   a typed form; [`roles`], [`rules`]: who does what, and how often.
//! - [`store`]: the durable SQLite store with query projections and migrations.
//! - [`archive`]: one device's archive, the API the CLI and the apps call.
//! - [`due`]: what is due and overdue, and compliance figures.
//! - [`bundle`]: files that carry changes between devices, sealed ([`bundle::seal`]) with the
//!   keys of [`device_key`].
//! - [`roster`]: class rosters from .xlsx/.csv.
//! - [`membership`]: the school's signing key, invites and membership certificates.

pub mod archive;
pub mod bundle;
pub mod carry;
pub mod consent;
pub mod dates;
pub mod device_key;
pub mod doc;
pub mod due;
pub mod error;
pub mod forms;
pub mod id_card;
pub mod ids;
pub mod kinds;
pub mod membership;
mod panics;
pub mod records;
pub mod reports;
pub mod roles;
pub mod roster;
pub mod rules;
pub mod school;
pub mod store;
pub mod sync;
pub mod trust;

pub use archive::{Archive, RecordInput, SchoolSetup};
pub use error::{Error, Result};
