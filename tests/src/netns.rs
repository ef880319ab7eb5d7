//! A private network namespace (a "phone") joined to the root namespace by a veth pair with
//! private addresses (10.77.N.1 on the root side, 10.77.N.2 in the namespace), for tests that
//! need a real network path without touching any other network.
//!
//! Creating one needs root and `ip` (iproute2); [`Netns::create`] says why it could not. The
//! namespace and the veth pair are removed when the [`Netns`] is dropped, also on a panic.
//! [`Netns::try_netem`] puts the kernel's `netem` on both ends where the kernel has it.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::link::Direction;

/// Serialises address choice within this process; [`across_processes`] between the test
/// binaries that `scripts/test-lanes.sh` runs at the same time.
static CREATE: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair to the root namespace.
#[derive(Debug)]
pub struct Netns {
    name: String,
    root_if: String,
    ns_if: String,
    /// The root namespace's end of the veth pair.
    pub root_addr: Ipv4Addr,
    /// The namespace's end.
    pub ns_addr: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Third octets of the 10.77.0.0/16 addresses configured on this machine's root namespace.
fn octets_in_use() -> Vec<u8> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("10.77."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

/// An exclusive lock on a file in the temporary directory, held while a namespace picks its
/// subnet and configures it, so two processes never take the same free subnet. Released when
/// the file is dropped (or the process dies).
fn across_processes() -> Result<std::fs::File, String> {
    let path = std::env::temp_dir().join("shouwang-netns.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file)
}

impl Netns {
    /// Creates a namespace named after this process and `tag`, with its veth pair and
    /// addresses, loopback up. An error says why none could be made (not root, no `ip`).
    pub fn create(tag: &str) -> Result<Netns, String> {
        let _one_at_a_time = CREATE.lock().unwrap_or_else(|e| e.into_inner());
        let _one_process_at_a_time = across_processes()?;
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let used = octets_in_use();
        let start = (pid as usize * 7 + n as usize) % 250;
        let octet = (0..250)
            .map(|k| ((start + k) % 250 + 2) as u8)
            .find(|o| !used.contains(o))
            .ok_or("no free 10.77.N.0/24 subnet")?;
        let ns = Netns {
            name: format!("shouwang-{pid}-{n}-{tag}"),
            root_if: format!("sw{pid}x{n}r"),
            ns_if: format!("sw{pid}x{n}p"),
            root_addr: Ipv4Addr::new(10, 77, octet, 1),
            ns_addr: Ipv4Addr::new(10, 77, octet, 2),
        };
        // From here on, Drop removes whatever was made.
        ip(&["netns", "add", &ns.name])?;
        let root = format!("{}/24", ns.root_addr);
        let inner = format!("{}/24", ns.ns_addr);
        ip(&[
            "link",
            "add",
            &ns.root_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.ns_if,
        ])?;
        ip(&["link", "set", &ns.ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &root, "dev", &ns.root_if])?;
        ip(&["link", "set", &ns.root_if, "up"])?;
        ns.ip_in(&["addr", "add", &inner, "dev", &ns.ns_if])?;
        ns.ip_in(&["link", "set", &ns.ns_if, "up"])?;
        ns.ip_in(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn ip_in(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Puts `netem` with `up`'s impairments on the namespace's end (traffic leaving the
    /// namespace) and `down`'s on the root end. `false` (and nothing changed) where the
    /// kernel has no netem.
    pub fn try_netem(&self, up: &Direction, down: &Direction) -> bool {
        let spec = |d: &Direction| -> Vec<String> {
            let mut s = vec![
                "netem".to_owned(),
                "delay".into(),
                format!("{}ms", d.delay.as_millis()),
                format!("{}ms", d.jitter.as_millis()),
                "loss".into(),
                format!("{:.3}%", d.loss * 100.0),
            ];
            if let Some(rate) = d.rate_bps {
                s.push("rate".into());
                s.push(format!("{}kbit", rate / 1000));
            }
            s
        };
        let tc = |netns: Option<&str>, dev: &str, d: &Direction| {
            let mut c = match netns {
                Some(n) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", n, "tc"]);
                    c
                }
                None => Command::new("tc"),
            };
            c.args(["qdisc", "add", "dev", dev, "root"])
                .args(spec(d))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !tc(Some(&self.name), &self.ns_if, up) {
            return false;
        }
        if !tc(None, &self.root_if, down) {
            let _ = Command::new("ip")
                .args(["netns", "exec", &self.name, "tc", "qdisc", "del", "dev"])
                .args([self.ns_if.as_str(), "root"])
                .stderr(Stdio::null())
                .status();
            return false;
        }
        true
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys its end of the pair, and with it the root end;
        // delete the root end too in case the namespace was never made.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.root_if]);
    }
}
