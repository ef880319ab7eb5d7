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
//! - [`peer`]: device-to-device sync (both sides present certificates; only what both
//!   members may see flows).
//! - [`device`]: a device's identity, enrollment, and sync with the hub or a peer, shared by
//!   the CLI and the phone apps.
//! - [`server`] (feature `server`): the `shouwang-relay` server: an iroh relay (the
//!   `iroh-relay` crate), the school hub, `/health` and `/metrics`; school setup and invites.

pub mod device;
pub mod handshake;
pub mod keyfile;
pub mod pace;
pub mod peer;
#[cfg(feature = "server")]
pub mod server;
pub mod syncing;
pub mod transport;
#[cfg(feature = "usage")]
pub mod usage;

/// Unix seconds now (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
