//! Sync: the `shouwang/sync/1` protocol, with no IO.
//!
//! [`wire`] is the frame format; [`session::Session`] is the state machine a transport drives.
//! Per document it uses automerge's own sync protocol; around it, the session finds which
//! documents differ at a cost independent of how many there are, persists per-peer state in the
//! store so a reconnect sends only what is new, and keeps each side within its [`Scope`].

pub mod session;
pub mod wire;

pub use session::{Event, MAX_OUT_OF_SCOPE, Output, Progress, Scope, Session};
pub use wire::{Compression, Message, Why};
