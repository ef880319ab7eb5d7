//! Ports for the servers tests start, stop and start again on the same address.
//!
//! A port asked of the kernel (`bind` to port 0) is free when asked, and any socket bound to
//! port 0 afterwards (a phone's endpoint, a link, another test binary's hub) may be given it
//! while the hub that used it is down between two starts: the phone's packets then reach a
//! stranger. `scripts/test-lanes.sh` runs two test binaries at once, so "another process" is
//! not hypothetical. [`reserve`] therefore hands out ports
//!
//! 1. below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), which no
//!    socket bound to port 0 is ever given, and
//! 2. reserved for the life of the test process by an exclusive lock on a file per port in the
//!    temporary directory (`shouwang-ports/N.lock`), which every test binary honours; the lock
//!    goes with the process, however it ends.
//!
//! Where the ephemeral range leaves no room below it, the kernel's choice is used, as before.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Mutex;

/// The lowest port handed out: above the ports services commonly use.
const LOWEST: u16 = 10_000;

/// The lock files held by this process (one per reserved port); never released before exit.
static HELD: Mutex<Vec<(u16, File)>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that is free for TCP and UDP now, that no socket bound to port 0 will be
/// given, and that no other test process will reserve while this one runs.
pub fn reserve() -> u16 {
    let (low, high) = room();
    if high <= low {
        return kernel_choice();
    }
    let span = u32::from(high - low);
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    // Processes start at different places (by pid), so two rarely try the same ports.
    let start = (std::process::id().wrapping_mul(2_654_435_761) % span) as u16;
    let dir = lock_dir();
    for k in 0..span {
        let port = low + ((u32::from(start) + k) % span) as u16;
        if held.iter().any(|(p, _)| *p == port) {
            continue;
        }
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{port}.lock")))
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        if is_free(port) {
            held.push((port, file));
            return port;
        }
    }
    kernel_choice()
}

/// The ports from [`LOWEST`] up to the start of the kernel's ephemeral range.
fn room() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (LOWEST, start)
}

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("shouwang-ports");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn kernel_choice() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_free_and_below_the_ephemeral_range() {
        let (low, high) = room();
        let ports: Vec<u16> = (0..20).map(|_| reserve()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        for p in ports {
            if high > low {
                assert!((low..high).contains(&p), "{p} is not in {low}..{high}");
            }
            assert!(is_free(p), "{p} is taken");
            // Another process's lock attempt on the same file fails while this one runs.
            let again = OpenOptions::new()
                .write(true)
                .open(lock_dir().join(format!("{p}.lock")))
                .unwrap();
            assert!(again.try_lock().is_err(), "{p} is not reserved");
        }
    }
}
