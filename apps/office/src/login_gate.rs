//! The login's gate in memory: what a login may cost before the archive is touched or a
//! password checked.
//!
//! The lock-outs (`auth.rs`) count failures per name and address in `hub.db`; they do not
//! bound how fast one address may try names nobody has. A script on the school's network
//! posting logins with a new random name each time was never locked, wrote a row to
//! `hub.db` for each attempt and queued an argon2 check behind every other: a real member's
//! login waited behind the whole flood. So, before anything else:
//!
//! - each address may start [`PER_MINUTE`] logins a minute (a sliding window); a browser a
//!   member logged in from since the hub started counts on its own instead of under the
//!   address (behind a proxy every member shares one address, and her office computer must
//!   not wait behind someone else's script), with the same allowance;
//! - at most [`IN_FLIGHT`] logins from elsewhere are under way at once (waiting for the
//!   archive or their password check); past that the answer is "busy" at once, not a wait at
//!   the end of an unbounded queue.
//!
//! Everything here is in memory and bounded ([`MAX_KEYS`] windows, [`MAX_TRUSTED`]
//! browsers, the oldest trusted one going first). The trusted browsers are read from
//! `office_browsers` before the first login after a start ([`LoginGate::load`]): a restart
//! behind a proxy, with a script keeping the shared address at its limit, must not leave the
//! 校长 unable to log in to become trusted again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Logins one address (or one trusted browser) may start in a minute.
pub const PER_MINUTE: usize = 20;
/// Logins not from a trusted browser under way at once.
pub const IN_FLIGHT: usize = 16;
/// Windows kept (addresses and browsers); past it, the oldest idle ones go first.
const MAX_KEYS: usize = 4096;
/// Browsers remembered as trusted.
const MAX_TRUSTED: usize = 4096;
const WINDOW: Duration = Duration::from_secs(60);

/// What the gate says to one login.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    /// Go on; dropping the ticket ends the login's turn.
    Pass(Ticket<'a>),
    /// This address (or browser) started [`PER_MINUTE`] logins in the last minute.
    TooFast,
    /// [`IN_FLIGHT`] logins are under way already.
    Busy,
}

/// A login under way (counted in [`LoginGate`]'s in-flight logins unless from a trusted
/// browser).
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    counted: Option<&'a AtomicUsize>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.counted {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Browser(String),
}

#[derive(Debug, Default)]
pub(crate) struct LoginGate {
    windows: Mutex<Windows>,
    in_flight: AtomicUsize,
    /// Whether the trusted browsers were read from the archive since the start.
    loaded: AtomicBool,
}

#[derive(Debug, Default)]
struct Windows {
    starts: HashMap<Key, VecDeque<Instant>>,
    /// Hashes of browser tokens a member logged in with (`auth::digest`), and the order they
    /// came in (the oldest goes first past [`MAX_TRUSTED`]).
    trusted: HashSet<String>,
    trusted_order: VecDeque<String>,
}

impl LoginGate {
    /// Admits a login from `address` carrying the browser tokens whose hashes are `browsers`.
    pub(crate) fn enter(&self, address: IpAddr, browsers: &[String], now: Instant) -> Entry<'_> {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let key = browsers
            .iter()
            .find(|b| w.trusted.contains(*b))
            .map_or(Key::Address(address), |b| Key::Browser(b.clone()));
        let trusted = matches!(key, Key::Browser(_));
        if !w.starts.contains_key(&key) && w.starts.len() >= MAX_KEYS {
            w.starts
                .retain(|_, s| s.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            if w.starts.len() >= MAX_KEYS {
                return Entry::Busy;
            }
        }
        let starts = w.starts.entry(key).or_default();
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            starts.pop_front();
        }
        if starts.len() >= PER_MINUTE {
            return Entry::TooFast;
        }
        if trusted {
            starts.push_back(now);
            return Entry::Pass(Ticket { counted: None });
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Entry::Busy;
        }
        starts.push_back(now);
        Entry::Pass(Ticket {
            counted: Some(&self.in_flight),
        })
    }

    /// Remembers the browser token hashing to `browser` as one a member logged in with.
    pub(crate) fn trust(&self, browser: String) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.trusted.contains(&browser) {
            return;
        }
        while w.trusted.len() >= MAX_TRUSTED {
            let Some(oldest) = w.trusted_order.pop_front() else {
                break;
            };
            w.trusted.remove(&oldest);
        }
        w.trusted.insert(browser.clone());
        w.trusted_order.push_back(browser);
    }

    /// Whether the trusted browsers were read since the start ([`LoginGate::load`]).
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Trusts the browsers members logged in with before the start (`office_browsers`, oldest
    /// first).
    pub(crate) fn load(&self, browsers: Vec<String>) {
        for b in browsers {
            self.trust(b);
        }
        self.loaded.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(e: &Entry<'_>) -> bool {
        matches!(e, Entry::Pass(_))
    }

    #[test]
    fn an_address_starts_twenty_logins_a_minute_and_a_trusted_browser_its_own() {
        let gate = LoginGate::default();
        let t = Instant::now();
        let here: IpAddr = "10.0.0.5".parse().unwrap();
        for _ in 0..PER_MINUTE {
            assert!(passes(&gate.enter(here, &[], t)));
        }
        assert!(matches!(gate.enter(here, &[], t), Entry::TooFast));
        // Another address is not held up; a fake browser token counts as the address.
        assert!(passes(&gate.enter("10.0.0.6".parse().unwrap(), &[], t)));
        assert!(matches!(
            gate.enter(here, &["made up".into()], t),
            Entry::TooFast
        ));
        // Her office computer, behind the same address, logs in.
        gate.trust("hers".into());
        assert!(passes(&gate.enter(here, &["hers".into()], t)));
        // A minute later the address may try again.
        assert!(passes(&gate.enter(here, &[], t + WINDOW)));
    }

    #[test]
    fn past_sixteen_logins_under_way_the_answer_is_busy_at_once() {
        let gate = LoginGate::default();
        let t = Instant::now();
        let tickets: Vec<_> = (0..IN_FLIGHT)
            .map(|i| gate.enter(IpAddr::from([10, 0, 1, i as u8]), &[], t))
            .collect();
        assert!(tickets.iter().all(passes));
        assert!(matches!(
            gate.enter("10.0.2.1".parse().unwrap(), &[], t),
            Entry::Busy
        ));
        gate.trust("hers".into());
        assert!(passes(&gate.enter(
            "10.0.2.1".parse().unwrap(),
            &["hers".into()],
            t
        )));
        drop(tickets);
        assert!(passes(&gate.enter("10.0.2.1".parse().unwrap(), &[], t)));
    }
}
