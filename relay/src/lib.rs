//! # shouwang-relay
//!
//! How 守望 devices talk over the network, and the server a school or county runs.
//!
//! - [`transport`]: one iroh endpoint per device ([`transport::Node`]) speaking
//!   `shouwang/sync/1`: length-prefixed frames over one QUIC stream, driven by a
//!   [`transport::Conversation`] (the sync protocol plugs in there). Relays and peer addresses
//!   come only from configuration or an invite.
//! - [`handshake`]: the first frames of every connection: enrollment with an invite, or a
//!   membership certificate, before any record.
//! - [`server`] (feature `server`): the `shouwang-relay` server: an iroh relay (the
//!   `iroh-relay` crate), the school hub, `/health` and `/metrics`; school setup and invites.

pub mod handshake;
#[cfg(feature = "server")]
pub mod server;
pub mod syncing;
pub mod transport;
