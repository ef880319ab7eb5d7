//! `shouwang join`, `record` and `sync` over a bad mobile link (issue 3, point 6): the phone is
//! the real `shouwang` binary in its own network namespace, joined to the root namespace by a
//! veth pair (10.77.N.0/24); the real hub runs in-process in the root namespace.
//!
//! - EDGE: 420 ms ± 50 ms each way, 1.5 % loss, 200 kbit/s up, 240 kbit/s down. Where the
//!   kernel has `netem`, it is put on both ends of the veth pair; otherwise the userspace link
//!   emulator (`shouwang_tests::link`) applies the same parameters in front of the hub's UDP
//!   socket. The forwarder stays in place either way (with no impairment of its own under
//!   netem) to count the bytes and to take the link down.
//! - Flapping: the same link, 30 s fully down and 30 s up, over and over.
//!
//! The hub holds 郭庄小学 with 40 children and a year of history; the 班主任's new phone joins
//! with an invite naming the link's address, records a week offline and syncs.
//!
//! Needs root and `ip` (iproute2); where no namespace can be made the tests print why and
//! pass without running.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use shouwang_core::Archive;
use shouwang_core::roles::Role;
use shouwang_relay::server::{self, DataDir, HubContact, Server, ServerConfig};
use shouwang_tests::fixtures::{HEAD_TEACHER, field};
use shouwang_tests::link::{Flapping, Link, LinkConfig, LinkStats};
use shouwang_tests::netns::Netns;
use shouwang_tests::workload::{self, Entry};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The hub's data directory with the school and its history, built once per test process.
fn template() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        workload::hub_with_history(&dir.path().join("hub"));
        dir
    })
    .path()
}

/// A phone in its namespace, the hub, and the link between them.
struct Edge {
    // Dropped in this order: the link, the hub, the runtime, then the namespace and files.
    link: Link,
    server: Option<Server>,
    hub_socket: SocketAddr,
    rt: tokio::runtime::Runtime,
    ns: Netns,
    dir: tempfile::TempDir,
}

/// One story at a time. A story restarts its hub on the same UDP port (the link forwards
/// there); while that port is free, the other story's sockets (its hub, its link) could take
/// it, and the link would then deliver this phone's packets to a hub that does not know it.
/// A run on 2026-12-03 saw that symptom once: after the restart, every attempt for four
/// minutes was turned away as a stranger, while the story passed alone. It came back on
/// 2026-12-05 with this lock in place; the cause then was the stopped hub's archive, closed
/// after `shutdown` had returned and the saved data directory was restored: SQLite deleted
/// the restored `hub.db-wal`, which held the phone's registration. `Server::shutdown` now
/// returns with the archive closed (`relay/tests/hub.rs`,
/// `a_graceful_shutdown_returns_with_the_archive_closed`).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Edge {
    /// Sets everything up, or says why it cannot (no namespaces here) and returns `None`.
    fn new(tag: &str) -> Option<Edge> {
        let ns = match Netns::create(tag) {
            Ok(ns) => ns,
            Err(why) => {
                eprintln!(
                    "跳过：无法创建网络命名空间（需要 root 权限和 iproute2 的 ip 命令）：{why}"
                );
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        workload::copy_dir(&template().join("hub"), &dir.path().join("hub"));
        // The hub's data key lives beside its data directory, not in it.
        std::fs::copy(template().join("hub.key"), dir.path().join("hub.key")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(Server::start(Self::config(
                dir.path(),
                (Ipv4Addr::LOCALHOST, shouwang_tests::ports::reserve()).into(),
            )))
            .unwrap();
        let hub_socket = server.hub().bound_sockets()[0];
        let listen = SocketAddr::from((ns.root_addr, 0));
        let edge = LinkConfig::edge(listen, hub_socket);
        let config = if ns.try_netem(&edge.up, &edge.down) {
            eprintln!("EDGE 链路：内核 netem（veth 两端），转发器只计数");
            LinkConfig::ideal(listen, hub_socket)
        } else {
            eprintln!("EDGE 链路：内核没有 netem，使用用户态链路模拟器");
            edge
        };
        let link = rt.block_on(Link::start(config)).unwrap();
        Some(Edge {
            link,
            server: Some(server),
            hub_socket,
            rt,
            ns,
            dir,
        })
    }

    /// The hub: no relay (the phone has only the link), no HTTP, UDP on loopback only, so
    /// the phone's namespace cannot reach it except through the link.
    fn config(dir: &Path, hub: SocketAddr) -> ServerConfig {
        ServerConfig {
            relay_bind: None,
            relay_url: None,
            http_bind: None,
            hub_bind: vec![hub],
            ..ServerConfig::loopback(dir.join("hub"))
        }
    }

    fn data(&self) -> DataDir {
        DataDir::new(self.dir.path().join("hub"))
    }

    fn phone(&self) -> PathBuf {
        self.dir.path().join("phone.db")
    }

    /// An invite for the 班主任 whose hub address is the link's.
    fn ticket(&self) -> String {
        let contact = HubContact {
            relay_url: None,
            addrs: vec![self.link.addr()],
        };
        server::issue_invite(
            &self.data(),
            &contact,
            HEAD_TEACHER,
            Role::HeadTeacher,
            now(),
            now() + 86_400,
        )
        .unwrap()
        .ticket
    }

    /// `shouwang --store <phone> <args>` inside the namespace.
    fn command(&self, args: &[String]) -> Command {
        let mut c = self.ns.command(BIN);
        c.arg("--store")
            .arg(self.phone())
            .args(args)
            .env_remove("SHOUWANG_STORE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        self.command(&args).output().unwrap()
    }

    fn ok(&self, args: &[String]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Joins over the link; returns the time it took.
    fn join(&self) -> Duration {
        let started = Instant::now();
        let out = self.run(&["join", &self.ticket()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "join: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("已加入郭庄小学"), "{text}");
        assert!(text.contains("收到 40 名学生的档案"), "{text}");
        started.elapsed()
    }

    /// Records the week offline with `shouwang record` and `shouwang child edit`.
    fn record_week(&self) -> Vec<Entry> {
        let mut phone = Archive::open(&self.phone()).unwrap();
        let week = workload::week(&workload::names(&mut phone));
        drop(phone);
        for e in &week {
            self.ok(&e.cli_args());
        }
        let status = self.ok(&["status".to_owned()]);
        assert!(status.contains("还没有收到"), "{status}");
        week
    }

    fn stop_hub(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }

    /// Starts the hub again on the same UDP port (the link forwards there).
    fn start_hub(&mut self) {
        assert!(self.server.is_none());
        let server = self
            .rt
            .block_on(Server::start(Self::config(
                self.dir.path(),
                self.hub_socket,
            )))
            .unwrap();
        assert_eq!(
            server.hub().bound_sockets()[0],
            self.hub_socket,
            "the hub came back on another port"
        );
        self.server = Some(server);
    }

    /// Checks the hub holds every record and edit of the week exactly once, and every record
    /// the phone has.
    fn assert_hub_has(&self, week: &[Entry]) {
        let mut hub = self.data().open_archive().unwrap();
        for e in week {
            match e {
                Entry::Record {
                    kind, child, date, ..
                } => {
                    let file = hub.child_file(child).unwrap();
                    let n = file
                        .records
                        .iter()
                        .filter(|r| r.kind_label.starts_with(kind) && r.meta.happened_on == *date)
                        .count();
                    assert_eq!(n, 1, "{kind} for {child} on {date}");
                }
                Entry::Edit { child, fields, .. } => {
                    let file = hub.child_file(child).unwrap();
                    assert_eq!(field(&file, "guardian", "phone"), Some(fields[0].1));
                }
            }
        }
        let mut phone = Archive::open(&self.phone()).unwrap();
        let on_phone = record_ids(&mut phone);
        let on_hub = record_ids(&mut hub);
        assert!(on_phone.is_subset(&on_hub));
        assert_eq!(
            on_phone.len(),
            workload::CHILDREN * workload::HISTORY_PER_CHILD + 25
        );
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Not during a panic's unwinding with a poisoned runtime: shutdown is best effort.
            self.rt.block_on(server.shutdown());
        }
    }
}

fn record_ids(archive: &mut Archive) -> BTreeSet<String> {
    let conn = archive.store().conn();
    let mut stmt = conn.prepare("SELECT record_id FROM p_records").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn show(stats: &LinkStats) -> String {
    format!(
        "上行 {} 包 {} 字节（丢 {}，断 {}，满 {}），下行 {} 包 {} 字节（丢 {}，断 {}，满 {}）",
        stats.up.delivered_datagrams,
        stats.up.delivered_bytes,
        stats.up.lost,
        stats.up.dropped_down,
        stats.up.dropped_queue,
        stats.down.delivered_datagrams,
        stats.down.delivered_bytes,
        stats.down.lost,
        stats.down.dropped_down,
        stats.down.dropped_queue,
    )
}

#[test]
fn a_teachers_week_syncs_over_an_edge_link() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(edge) = Edge::new("edge") else {
        return;
    };
    let before = edge.link.stats();
    let took = edge.join();
    eprintln!(
        "加入（经 EDGE）：{:.1} 秒；{}",
        took.as_secs_f64(),
        show(&edge.link.stats().since(&before))
    );
    let week = edge.record_week();

    let before = edge.link.stats();
    let started = Instant::now();
    let out = edge.ok(&["sync".to_owned()]);
    assert!(out.contains("同步完成"), "{out}");
    eprintln!(
        "同步一周记录（经 EDGE）：{:.1} 秒；{}",
        started.elapsed().as_secs_f64(),
        show(&edge.link.stats().since(&before))
    );
    let status = edge.ok(&["status".to_owned()]);
    assert!(status.contains("学校服务器已有本机的全部内容"), "{status}");
    edge.assert_hub_has(&week);
}

/// How one `shouwang sync` attempt ended.
struct Attempt {
    ok: bool,
    took: Duration,
    stderr: String,
}

/// Waits for `child` until `deadline`, killing it then.
fn finish(mut child: std::process::Child, started: Instant, deadline: Instant) -> Attempt {
    loop {
        if child.try_wait().unwrap().is_some() || Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Attempt {
                ok: out.status.success(),
                took: started.elapsed(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_sync_cut_by_a_flapping_link_resumes_and_converges() {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(mut edge) = Edge::new("flap") else {
        return;
    };
    edge.join();
    let week = edge.record_week();

    // Keep the state before any sync, to sync the same data twice: once cleanly, for
    // reference, and once over the flapping link.
    let saved = edge.dir.path().join("saved");
    edge.stop_hub();
    workload::copy_dir(edge.data().root(), &saved.join("hub"));
    workload::copy_store_files(&edge.phone(), &saved.join("phone.db"));
    edge.start_hub();
    let before = edge.link.stats();
    let out = edge.ok(&["sync".to_owned()]);
    assert!(out.contains("同步完成"), "{out}");
    let clean = edge.link.stats().since(&before);
    eprintln!("一次完整同步（不断线）：{}", show(&clean));
    edge.stop_hub();
    workload::copy_dir(&saved.join("hub"), edge.data().root());
    workload::copy_store_files(&saved.join("phone.db"), &edge.phone());
    edge.start_hub();

    // The same sync again; once half of its upward bytes have passed, the link starts
    // flapping: 30 s fully down, 30 s up, over and over.
    let flapping = Flapping {
        down: Duration::from_secs(30),
        up: Duration::from_secs(30),
    };
    let begun = Instant::now();
    let deadline = begun + Duration::from_secs(240);
    let before = edge.link.stats();
    // The emulator itself cuts at that byte (a poll from here could come too late).
    edge.link.flap_after(clean.up.delivered_bytes / 2, flapping);
    let first = edge
        .command(&["sync".to_owned()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = Some(first);
    while let Some(child) = first.as_mut() {
        if child.try_wait().unwrap().is_some() || edge.link.is_flapping() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if !edge.link.is_flapping() {
        let out = first.take().map(|c| c.wait_with_output().unwrap());
        panic!(
            "the sync ended before half its bytes had gone up ({} of {} up): {out:?}",
            edge.link.stats().since(&before).up.delivered_bytes,
            clean.up.delivered_bytes
        );
    }
    eprintln!(
        "链路在第 {:.1} 秒断开，此后每 30 秒断开、恢复交替",
        begun.elapsed().as_secs_f64()
    );

    // The phone retries until a sync succeeds, as a user or a background job would. (The cut
    // attempt fails once QUIC's idle timeout, 30 s, runs out; had the link come back before
    // that, it would have carried on in the same connection.)
    let mut attempt = finish(first.take().unwrap(), begun, deadline);
    let mut attempts = 1;
    loop {
        eprintln!(
            "第 {attempts} 次同步：{}，用时 {:.1} 秒，结束时链路{}（开始后 {:.0} 秒）{}",
            if attempt.ok { "成功" } else { "失败" },
            attempt.took.as_secs_f64(),
            if edge.link.is_up() { "通" } else { "断" },
            begun.elapsed().as_secs_f64(),
            if attempt.ok {
                String::new()
            } else {
                format!("：{}", attempt.stderr.lines().last().unwrap_or(""))
            }
        );
        if attempt.ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sync succeeded within 4 minutes"
        );
        std::thread::sleep(Duration::from_secs(1));
        attempts += 1;
        let started = Instant::now();
        let child = edge
            .command(&["sync".to_owned()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        attempt = finish(child, started, deadline);
    }
    let total = edge.link.stats().since(&before);
    // The outage really hit the sync: datagrams were dropped while the link was down.
    assert!(
        total.up.dropped_down + total.down.dropped_down > 0,
        "{total:?}"
    );
    eprintln!(
        "断续链路上共 {attempts} 次尝试，{:.0} 秒：{}",
        begun.elapsed().as_secs_f64(),
        show(&total)
    );

    let status = edge.ok(&["status".to_owned()]);
    assert!(status.contains("学校服务器已有本机的全部内容"), "{status}");
    edge.assert_hub_has(&week);
    // Resumed, not started over and over: everything the phone sent over all attempts is
    // less than two and a half clean syncs. (A cut that lands after the whole week went up but
    // before the hub confirmed it costs one full resend, since a sender never counts as shared
    // what it only sent: just over 2× in one run of four. Starting over on every attempt would
    // be 3× or more.)
    assert!(
        2 * total.up.delivered_bytes < 5 * clean.up.delivered_bytes,
        "{} bytes up over all attempts, {} for one clean sync",
        total.up.delivered_bytes,
        clean.up.delivered_bytes
    );
}
