//! The real `shouwang-relay serve` in its own process, and what `/proc` says about a process:
//! free loopback ports, a configuration file for a data directory, RSS and its peak, and a
//! sampler that watches them. Shared by the tests and benches that measure the hub as
//! deployed (its RSS is its own, not the test's). Needs Linux (`/proc`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shouwang_relay::server::{DataDir, HubContact, KeySource};

/// A free TCP port on 127.0.0.1, kept for this test process ([`crate::ports::reserve`]): a hub
/// stopped and started again finds it free.
pub fn free_tcp() -> u16 {
    crate::ports::reserve()
}

/// A free UDP port on 127.0.0.1, kept for this test process ([`crate::ports::reserve`]).
pub fn free_udp() -> u16 {
    crate::ports::reserve()
}

/// A value in kB (or a count, for `Threads`) from `/proc/<pid>/status` (`pid` may be "self");
/// 0 if the process or the key is not there.
pub fn status_kb(pid: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets a process's peak RSS (VmHWM) to its current RSS. Linux ≥ 4.0; false if refused.
pub fn reset_peak(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Clock ticks per second (for `/proc/<pid>/stat`).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds a process has used.
pub fn cpu_seconds(pid: &str, ticks: f64) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) as f64 / ticks
}

/// kB as MiB, one decimal.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Samples a process's RSS every 20 ms on its own thread and keeps the highest value seen.
/// The thread stops when [`Sampler::finish`] is called or the sampler is dropped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    threads: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pid` ("self" for this process).
    pub fn start(pid: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let threads = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let (stop, peak, threads) = (stop.clone(), peak.clone(), threads.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kb(&pid, "VmRSS"), Ordering::Relaxed);
                    threads.fetch_max(status_kb(&pid, "Threads"), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Sampler {
            stop,
            peak,
            threads,
            thread: Some(thread),
        }
    }

    /// (peak RSS in kB, most threads seen).
    pub fn finish(mut self) -> (u64, u64) {
        self.halt();
        (
            self.peak.load(Ordering::Relaxed),
            self.threads.load(Ordering::Relaxed),
        )
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Ports of a hub on loopback and the configuration file that names them.
#[derive(Debug, Clone)]
pub struct HubPorts {
    pub config: PathBuf,
    pub relay: u16,
    pub hub: u16,
    pub http: u16,
}

impl HubPorts {
    /// Writes `<dir>/hub.toml` for `data` (its key file where the library keeps it), every
    /// socket on 127.0.0.1 on free ports, with `extra` appended under `[hub]` (such as
    /// `"max_connections = 512\n"`).
    pub fn write(dir: &Path, data: &DataDir, extra_hub: &str) -> HubPorts {
        let (relay, hub, http) = (free_tcp(), free_udp(), free_tcp());
        let config = dir.join("hub.toml");
        let key = match data.key_source() {
            KeySource::File(k) => k.display().to_string(),
            other => panic!("a key file was expected, not {other}"),
        };
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\n[data_key]\nfile = \"{key}\"\n[relay]\nbind = \"127.0.0.1:{relay}\"\n[hub]\nbind = [\"127.0.0.1:{hub}\"]\n{extra_hub}[http]\nbind = \"127.0.0.1:{http}\"\n",
                data.root().display(),
            ),
        )
        .unwrap();
        HubPorts {
            config,
            relay,
            hub,
            http,
        }
    }

    /// `bin --config <config> office-password --member <member>` with the password on stdin:
    /// whether it succeeded, and what it printed (stdout, then stderr).
    /// `<bin> --config <this hub's configuration> <args>`: whether it succeeded, and what it
    /// printed (stdout, then stderr).
    pub fn command(&self, bin: &Path, args: &[&str]) -> (bool, String) {
        let out = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    pub fn office_password(&self, bin: &Path, member: &str, password: &str) -> (bool, String) {
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&self.config)
            .args(["office-password", "--member", member])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Where invites send devices: the relay and the hub's UDP socket.
    pub fn contact(&self) -> HubContact {
        HubContact {
            relay_url: Some(format!("http://127.0.0.1:{}/", self.relay)),
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], self.hub))],
        }
    }
}

/// The real `shouwang-relay serve`, in its own process; killed when dropped.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    bin: PathBuf,
    ports: HubPorts,
    log: PathBuf,
}

impl HubProcess {
    /// Starts `bin --config <ports.config> serve`, its log in `log`, and waits (at most 30 s)
    /// until `/health`'s port answers.
    pub fn start(bin: &Path, ports: &HubPorts, log: &Path) -> HubProcess {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&ports.config)
            .arg("serve")
            // As the systemd unit runs it (relay/deploy/shouwang-relay.service).
            .env("MALLOC_ARENA_MAX", "2")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("shouwang-relay binary");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", ports.http)).is_ok() {
                return HubProcess {
                    child,
                    bin: bin.to_owned(),
                    ports: ports.clone(),
                    log: log.to_owned(),
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hub exited ({status}): {}", tail(log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("hub did not start: {}", tail(log));
    }

    /// The process id, as `/proc` names it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its ports.
    pub fn ports(&self) -> &HubPorts {
        &self.ports
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// `/metrics` as name → value.
    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.ports.http)) else {
            return out;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ =
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        for line in text.lines().filter(|l| l.starts_with("shouwang_")) {
            if let Some((k, v)) = line.rsplit_once(' ')
                && let Ok(v) = v.parse()
            {
                out.insert(k.to_owned(), v);
            }
        }
        out
    }

    /// SIGTERM, then wait (SIGKILL after 20 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("hub did not stop on SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL: the process dies between two instructions; waits until it is gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it (SIGKILL) and starts it again with the same settings.
    pub fn kill_and_restart(self) -> HubProcess {
        let (bin, ports, log) = (self.bin.clone(), self.ports.clone(), self.log.clone());
        self.kill();
        HubProcess::start(&bin, &ports, &log)
    }

    /// Stops it and starts it again with the same settings.
    pub fn restart(self) -> HubProcess {
        let (bin, ports, log) = (self.bin.clone(), self.ports.clone(), self.log.clone());
        self.stop();
        HubProcess::start(&bin, &ports, &log)
    }
}

impl Drop for HubProcess {
    /// A test that panics must not leave the server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last 20 lines of a log file.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
