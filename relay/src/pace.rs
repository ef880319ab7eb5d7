//! How fast another device may make this one work: a token bucket of sync frames per device.
//!
//! Each sync frame a welcomed device sends costs the receiver a look at the device's standing
//! and the session's work, and some cost more: a `Refused` is a durable write, a `Doc` with
//! no heads makes the receiver send the whole document again, and on the hub a change taken
//! wakes every live connection. The hub's daily quota bounds the bytes of changes a member
//! hands in, not how many frames carry them. So every device has a bucket of [`BURST`]
//! frames, refilled at [`PER_SECOND`] ([`Pace`]); a frame taken from an empty bucket is still
//! answered,
//! and the device's next frame is read only once the bucket is back above empty
//! ([`crate::transport::Conversation::hold_off`]). Nobody is refused for speed: a device
//! faster than the pace is slowed to it, as QUIC's flow control holds what it sends meanwhile.
//!
//! The hub keeps one [`FrameRate`] for all its conversations (`HubState`), so a device holding
//! several connections (at most `ConnectionLimits::per_endpoint`) shares one pace among
//! them; a phone waiting for colleagues keeps one for the devices that connect to it
//! (`PeerFactory`), and a phone dialing a colleague one per connection. An administrator's
//! device has no pace on the hub, as it has no daily quota: after a restore its sync
//! exchanges every document of the school, one frame each, and the rebuild waits on it.
//!
//! An honest sync is a few frames: the week of a teacher's phone is three each way
//! (BENCHMARKS.md §5), a live connection one or two per record written anywhere in its
//! scope. The most a member's device sends at once is when its digests disagree with the
//! hub's (a first sync, a restore): a sync message or two for each document of its scope, a
//! 班主任's forty children about 120 documents, within the burst.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shouwang_core::ids::DeviceId;

/// Frames a device may send at once before it is slowed.
pub const BURST: f64 = 1024.0;
/// Frames a second a device may send once its burst is spent.
pub const PER_SECOND: f64 = 64.0;

/// A pace: a burst of frames, then so many a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub burst: f64,
    pub per_second: f64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            burst: BURST,
            per_second: PER_SECOND,
        }
    }
}
/// Devices remembered before full buckets are forgotten (a full bucket is what a device
/// starts with anyway). Only welcomed devices have a bucket (their certificate verified), so
/// the school's registered devices bound the rest.
const REMEMBERED: usize = 4096;

/// Every welcomed device's bucket.
#[derive(Debug)]
pub struct FrameRate {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<DeviceId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Frames left; below zero, the debt the device's frames wait out.
    tokens: f64,
    at: Instant,
}

impl Default for FrameRate {
    fn default() -> Self {
        FrameRate::new(Pace::default())
    }
}

impl FrameRate {
    /// Buckets of `pace`.
    pub fn new(pace: Pace) -> FrameRate {
        FrameRate {
            burst: pace.burst,
            per_second: pace.per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one frame from `device`'s bucket at `now`, and returns how long its next frame
    /// must wait (none while the bucket is not empty).
    pub fn take(&self, device: &DeviceId, now: Instant) -> Option<Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= REMEMBERED && !buckets.contains_key(device) {
            buckets.retain(|_, b| self.refilled(b, now) < self.burst);
        }
        let bucket = buckets.entry(device.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = self.refilled(bucket, now) - 1.0;
        bucket.at = now;
        (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / self.per_second))
    }

    /// The bucket's frames at `now`: what it held, and what the time since added, up to the
    /// burst.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> DeviceId {
        DeviceId::from_key(&[n; 32])
    }

    #[test]
    fn a_burst_goes_at_once_and_then_each_frame_waits_its_share() {
        let rate = FrameRate::new(Pace {
            burst: 4.0,
            per_second: 2.0,
        });
        let t = Instant::now();
        let d = device(1);
        for _ in 0..4 {
            assert_eq!(rate.take(&d, t), None);
        }
        // The fifth frame empties the bucket by one: the next waits half a second.
        assert_eq!(rate.take(&d, t), Some(Duration::from_millis(500)));
        // Another at once: a second of debt.
        assert_eq!(rate.take(&d, t), Some(Duration::from_secs(1)));
        // A second later the debt is paid and one frame is owed again.
        assert_eq!(
            rate.take(&d, t + Duration::from_secs(1)),
            Some(Duration::from_millis(500))
        );
        // Another device has its own bucket.
        assert_eq!(rate.take(&device(2), t), None);
    }

    #[test]
    fn a_quiet_device_gets_its_burst_back_and_no_more() {
        let rate = FrameRate::new(Pace {
            burst: 4.0,
            per_second: 2.0,
        });
        let t = Instant::now();
        let d = device(1);
        for _ in 0..6 {
            rate.take(&d, t);
        }
        // An hour later: a full bucket, not 7,200 frames.
        let later = t + Duration::from_secs(3600);
        for _ in 0..4 {
            assert_eq!(rate.take(&d, later), None);
        }
        assert!(rate.take(&d, later).is_some());
    }

    #[test]
    fn many_devices_forget_full_buckets_only() {
        let rate = FrameRate::new(Pace {
            burst: 2.0,
            per_second: 1.0,
        });
        let t = Instant::now();
        // A device 18 seconds in debt.
        let busy = device(0);
        for _ in 0..20 {
            rate.take(&busy, t);
        }
        for i in 0..REMEMBERED {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            rate.take(&DeviceId::from_key(&key), t);
        }
        assert_eq!(rate.buckets.lock().unwrap().len(), REMEMBERED + 1);
        // Ten seconds later every other bucket is full again and forgotten when one more
        // device comes; the one still in debt is kept, with its debt.
        let later = t + Duration::from_secs(10);
        rate.take(&device(9), later);
        assert_eq!(rate.buckets.lock().unwrap().len(), 2);
        assert!(
            rate.take(&busy, later)
                .is_some_and(|d| d > Duration::from_secs(8))
        );
    }
}
