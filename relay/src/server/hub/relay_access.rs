//! Who may use the school's built-in relay, and for how long ([`EnrolledOnly`]).
//!
//! The relay carries QUIC datagrams between devices that cannot reach each other directly
//! (a phone behind a carrier's NAT and the hub). It admits, after the client has proven its
//! key:
//!
//! 1. the hub itself, always;
//! 2. a device the school document registers and has not revoked, on at most
//!    [`PER_DEVICE`] connections at once (a phone that changed networks may hold an old one
//!    until the relay notices it is gone);
//! 3. a device the school has revoked, on one connection: a phone behind a carrier's NAT
//!    reaches the hub only through the relay, and must hear that it was revoked to wipe
//!    itself and report what it could not send;
//! 4. while an invite is open or the hub rebuilds from a backup, anyone (a device enrolling
//!    has no registration yet), on one connection per key and at most [`STRANGERS`] at
//!    once, as the hub's own endpoint keeps a few places for strangers.
//!
//! Admission is not for ever. The school watcher ([`super::watch_school`]) calls
//! [`RelayPlaces::evict`] at every tick: a stranger is disconnected once no invite has been
//! open for [`GRACE`] (unless it has enrolled meanwhile: a device is registered only at the
//! end of its enrollment, after the invite is spent), and a revoked device is left one
//! connection. The decision is made from memory ([`super::Enrolled`]), never from the
//! archive.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use iroh_relay::server::clients::Clients;
use iroh_relay::server::http_server::{BytesBody, Handlers, HyperError, RelayService};
use iroh_relay::server::{Access, AccessControl, ClientRateLimit, ClientRequest, ConnectionId};
use shouwang_core::ids::DeviceId;
use std::num::NonZeroU32;
use tracing::info;

use super::HubState;
use super::gate::Standing;
use crate::transport::EndpointId;

/// Relay connections one registered device may hold at once.
pub const PER_DEVICE: usize = 4;
/// Relay connections of devices the school does not register (admitted while an invite is
/// open), all together; one per key.
pub const STRANGERS: usize = 16;
/// How long strangers keep their relay connection after the last invite closed: the device
/// that spent it is registered only once its enrollment is done.
pub const GRACE: Duration = Duration::from_secs(60);
/// Keys the relay remembers the parsing of.
pub const KEY_CACHE: usize = 4096;

/// The relay's service: its client registry, this admission, and the `/ping` iroh's network
/// report probes (the relay's latency; without it a phone picks no home relay).
pub(crate) fn service(access: Arc<dyn iroh_relay::server::DynAccessControl>) -> RelayService {
    let mut handlers = Handlers::default();
    handlers.insert(
        (hyper::Method::GET, iroh_relay::http::RELAY_PROBE_PATH),
        Box::new(|_request, response: hyper::http::response::Builder| {
            let body: BytesBody = Box::new(http_body_util::Empty::<bytes::Bytes>::new());
            response
                .status(hyper::StatusCode::OK)
                .header("Access-Control-Allow-Origin", "*")
                .body(body)
                .map_err(|e| Box::new(e) as HyperError)
        }),
    );
    RelayService::new(
        handlers,
        hyper::HeaderMap::new(),
        Some(client_rate()),
        iroh_relay::KeyCache::new(KEY_CACHE),
        access,
        Arc::new(iroh_relay::server::Metrics::default()),
    )
}

/// What one relay connection may send a second (8 MiB, in bursts of 16 MiB): far above a
/// phone's, and the hub's own connection carries every relay-only phone's sync at once. It
/// bounds what one flooding connection costs, not who gets through: iroh's relay has no
/// fairness between destinations.
pub fn client_rate() -> ClientRateLimit {
    let mut rate = ClientRateLimit::new(NonZeroU32::new(8 << 20).unwrap_or(NonZeroU32::MIN));
    rate.max_burst_bytes = NonZeroU32::new(16 << 20);
    rate
}

/// The relay's admission hook: see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct EnrolledOnly {
    /// Set once the hub's state exists (the relay starts first).
    pub(crate) state: Arc<OnceLock<(Arc<HubState>, EndpointId)>>,
}

/// Whom a connecting key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Hub,
    Registered,
    /// Let in on one connection, to hear that it was revoked.
    Revoked,
    /// Let in only because an invite is open or the hub rebuilds.
    Stranger,
    Refused,
}

impl Who {
    /// Connections one key of this kind may hold at once.
    fn places(self) -> usize {
        match self {
            Who::Registered => PER_DEVICE,
            Who::Revoked | Who::Stranger => 1,
            Who::Hub | Who::Refused => 0,
        }
    }
}

impl EnrolledOnly {
    fn who(&self, state: &HubState, hub: EndpointId, endpoint: EndpointId) -> Who {
        if endpoint == hub {
            return Who::Hub;
        }
        let id = DeviceId::from_key(endpoint.as_bytes());
        match state.enrolled.standing(&id) {
            Some(Standing::Active) => Who::Registered,
            Some(Standing::Revoked) => Who::Revoked,
            None if state.enrolled.invite_open() || state.enrolled.rebuilding() => Who::Stranger,
            None => Who::Refused,
        }
    }
}

impl AccessControl for EnrolledOnly {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let Some((state, hub)) = self.state.get().cloned() else {
            return deny("the hub is starting");
        };
        let endpoint = request.endpoint_id();
        // From memory, and a `stat` of the invites now and then: no archive, no blocking pool.
        let metrics = &state.metrics;
        let refused = |reason| {
            metrics.relay_refused.fetch_add(1, Ordering::Relaxed);
            deny(reason)
        };
        match self.who(&state, hub, endpoint) {
            Who::Hub => Access::Allow,
            Who::Refused => refused("not enrolled in this school"),
            who => {
                if state
                    .enrolled
                    .relay
                    .take(endpoint, request.connection_id(), who)
                {
                    metrics.relay_connections.fetch_add(1, Ordering::Relaxed);
                    Access::Allow
                } else {
                    refused("too many relay connections")
                }
            }
        }
    }

    fn on_disconnect(&self, endpoint_id: EndpointId, connection_id: ConnectionId) {
        if let Some((state, _)) = self.state.get()
            && state.enrolled.relay.release(endpoint_id, connection_id)
        {
            state
                .metrics
                .relay_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn deny(reason: &str) -> Access {
    Access::Deny {
        reason: Some(reason.into()),
    }
}

/// The relay connections admitted, by key, and the relay's registry to disconnect them.
#[derive(Debug, Default)]
pub(crate) struct RelayPlaces {
    places: Mutex<Places>,
    clients: OnceLock<Clients>,
}

/// What [`RelayPlaces`] keeps, under one lock.
#[derive(Debug, Default)]
struct Places {
    admitted: HashMap<EndpointId, Vec<ConnectionId>>,
    /// Keys admitted as strangers and not registered since: one connection each, so their
    /// number is the strangers' places taken.
    strangers: HashSet<EndpointId>,
    /// Connections told to end and not ended yet (counted once).
    ending: HashSet<ConnectionId>,
    /// When an invite was last seen open (or the hub rebuilding).
    last_open: Option<Instant>,
    /// How long strangers stay after that ([`GRACE`] unless configured).
    grace: Option<Duration>,
}

impl RelayPlaces {
    /// How long strangers keep their connection once no invite is open.
    pub(crate) fn set_grace(&self, grace: Duration) {
        self.lock().grace = Some(grace);
    }

    /// The relay's registry of connected clients (set once the relay runs).
    pub(crate) fn set_clients(&self, clients: Clients) {
        let _ = self.clients.set(clients);
    }

    /// Connections admitted now.
    pub(crate) fn admitted(&self) -> usize {
        self.lock().admitted.values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Places> {
        self.places.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for `connection` of `endpoint`, if one is free for `who`.
    fn take(&self, endpoint: EndpointId, connection: ConnectionId, who: Who) -> bool {
        let mut places = self.lock();
        let held = places.admitted.get(&endpoint).map_or(0, Vec::len);
        let stranger = who == Who::Stranger;
        if held >= who.places() || (stranger && places.strangers.len() >= STRANGERS) {
            return false;
        }
        places
            .admitted
            .entry(endpoint)
            .or_default()
            .push(connection);
        if stranger {
            places.strangers.insert(endpoint);
        } else {
            // Enrolled since it was let in as a stranger: its place is no longer one of theirs.
            places.strangers.remove(&endpoint);
        }
        true
    }

    /// Gives `connection`'s place back; whether it held one (the hub's own do not).
    fn release(&self, endpoint: EndpointId, connection: ConnectionId) -> bool {
        let mut places = self.lock();
        places.ending.remove(&connection);
        let Some(held) = places.admitted.get_mut(&endpoint) else {
            return false;
        };
        let before = held.len();
        held.retain(|c| *c != connection);
        let held_one = held.len() < before;
        if held.is_empty() {
            places.admitted.remove(&endpoint);
            places.strangers.remove(&endpoint);
        }
        held_one
    }

    /// Disconnects what may no longer use the relay: strangers once no invite has been open
    /// for [`GRACE`], and a revoked device's connections but its newest. `standing` is the
    /// gate's word on a device; `open`, whether strangers may be let in now. Returns how many
    /// connections it told to end (each once).
    pub(crate) fn evict(
        &self,
        standing: impl Fn(&DeviceId) -> Option<Standing>,
        open: bool,
    ) -> u64 {
        let Some(clients) = self.clients.get() else {
            return 0;
        };
        let mut to_end = Vec::new();
        {
            let mut places = self.lock();
            if open {
                places.last_open = Some(Instant::now());
            }
            let grace = places.grace.unwrap_or(GRACE);
            let strangers_stay = places.last_open.is_some_and(|t| t.elapsed() < grace);
            let Places {
                admitted,
                strangers,
                ending,
                ..
            } = &mut *places;
            for (key, connections) in admitted.iter() {
                let ended: &[ConnectionId] = match standing(&DeviceId::from_key(key.as_bytes())) {
                    Some(Standing::Active) => {
                        // Enrolled meanwhile: no longer one of the strangers' places.
                        strangers.remove(key);
                        &[]
                    }
                    // One connection is enough to hear it; the newest is kept.
                    Some(Standing::Revoked) => &connections[..connections.len().saturating_sub(1)],
                    None if strangers_stay => &[],
                    None => connections,
                };
                // Each told once: it ends, and gives its place back, a moment later.
                to_end.extend(
                    ended
                        .iter()
                        .filter(|c| ending.insert(**c))
                        .map(|c| (*key, *c)),
                );
            }
        }
        // No lock of ours is held while the relay is told.
        let mut evicted = 0;
        for (key, connection) in to_end {
            if clients.disconnect(key, Some(connection)) {
                info!(endpoint = %key.fmt_short(), "relay connection ended: no longer admitted");
                evicted += 1;
            }
        }
        evicted
    }
}
