//! Network commands: joining with an invite ticket, syncing with the school's hub or directly
//! with another device, and the sync status. The device's network identity lives in the
//! store (see `shouwang_relay::device`).

use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use shouwang_core::Archive;
use shouwang_relay::device::{self, Identity, JoinSettings};
use shouwang_relay::handshake::EnrollProgress;
use shouwang_relay::syncing::ProgressHook;
use shouwang_relay::transport::{
    ConversationOptions, EndpointAddr, EndpointId, TransportError, Wake,
};

use super::Ctx;
use super::school::{check_new_store, report_joined};
use crate::error::{CliError, Result};

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::msg(format!(
                "无法启动网络：{}",
                shouwang_core::error::io_text(&e)
            ))
        })
}

fn net_error(e: TransportError) -> CliError {
    match e {
        TransportError::Conversation(core) => core.into(),
        // The network worked: the other side said why it refused.
        refused @ TransportError::Refused(_) => CliError::msg(refused.to_string()),
        other => CliError::msg(format!("连接失败：{other}。请检查网络后再试")),
    }
}

/// `shouwang join <ticket>`: enrolls this device with the hub and sets up the store from the
/// member's documents. On a store already joined, renews its member's expired certificate
/// with the new ticket, keeping the store ([`renew`]). Nothing is written if any step fails.
pub fn join(ctx: &mut Ctx, ticket: &str, label: Option<&str>) -> Result<()> {
    check_new_store(&ctx.store)?;
    if Archive::exists_with_key(&ctx.store, ctx.key.as_ref())? {
        return renew(ctx, ticket);
    }
    let label = label.unwrap_or("手机");
    let rt = runtime()?;
    let shown = !ctx.json && std::io::stderr().is_terminal();
    if shown {
        eprintln!("正在连接学校服务器……");
    }
    let settings = JoinSettings {
        progress: shown.then(|| {
            Box::new(|received: u64| {
                if received == 0 {
                    eprintln!("学校已接受邀请码。");
                }
                eprint!(
                    "\r正在接收学校档案：已收到 {:.1} KB   ",
                    received as f64 / 1024.0
                );
                let _ = std::io::stderr().flush();
            }) as EnrollProgress
        }),
        ..JoinSettings::default()
    };
    let joined = rt.block_on(device::join_with(
        &ctx.store,
        ctx.key.as_ref(),
        ticket,
        label,
        unix_now(),
        &ctx.conversation_options(),
        settings,
    ));
    if shown {
        eprintln!();
    }
    let mut archive = joined.map_err(net_error)?;
    report_joined(ctx, &mut archive)?;
    ctx.line("以后联网时运行 shouwang sync 与学校服务器同步。")
}

/// `shouwang join <ticket>` on a store already joined: the member's certificate expired (the
/// hub refuses it), and the administrator made her a new invite. The store stays, with what
/// she wrote and has not sent (`device::renew`).
fn renew(ctx: &mut Ctx, ticket: &str) -> Result<()> {
    let mut archive = ctx.open()?;
    let rt = runtime()?;
    if !ctx.json {
        eprintln!("本机已经加入学校，正在用这个邀请码给成员证书续期……");
    }
    let report = rt
        .block_on(device::renew(
            &mut archive,
            ticket,
            unix_now(),
            &ctx.conversation_options(),
            JoinSettings::default(),
        ))
        .map_err(net_error)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({
            "renewed": true,
            "documents_changed": report.changed,
        }));
    }
    ctx.line(
        "成员证书已续期，本机的档案和还没有同步的记录都保留着。现在运行 shouwang sync 把它们发给学校。",
    )
}

fn identity(archive: &mut Archive) -> Result<Identity> {
    Ok(Identity::load(archive)?)
}

/// The clock warning, counting the hub's time on the device's certificate as passed (an
/// enrolled device; see `Archive::clock_warning_since`).
pub(crate) fn clock_warning(archive: &mut Archive) -> Result<Option<String>> {
    let issued = Identity::load(archive)
        .ok()
        .map(|id| id.certificate.body().issued_at * 1000);
    Ok(archive.clock_warning_since(issued)?)
}

#[derive(Serialize)]
struct SyncReport {
    documents_changed: usize,
    frames_sent: u64,
    frames_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    millis: u128,
    /// Documents found damaged on this device and fetched again from the school: what was
    /// written in them since the last sync before the damage is to be checked and typed again.
    refetched_damaged: Vec<String>,
    /// What this device wrote offline in a file the school re-based and could not carry over
    /// into the new file (the rules refuse it now): one line each, what and why.
    not_kept: Vec<String>,
}

/// `shouwang sync`: one exchange with the hub until both sides have everything.
pub fn sync(ctx: &mut Ctx) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    let rt = runtime()?;
    let start = Instant::now();
    if !ctx.json {
        eprintln!("正在连接学校服务器……");
    }
    let hook = (!ctx.json && std::io::stderr().is_terminal()).then(|| progress_bar(start));
    let (mut archive, p) = rt.block_on(async {
        let node = id.bind(false).await.map_err(net_error)?;
        let r = device::sync_hub(&node, &id, archive, &ctx.conversation_options(), hook)
            .await
            .map_err(net_error);
        node.shutdown().await;
        r
    })?;
    let report = SyncReport {
        documents_changed: p.docs_changed,
        frames_sent: p.frames_sent,
        frames_received: p.frames_received,
        bytes_sent: p.bytes_sent,
        bytes_received: p.bytes_received,
        millis: start.elapsed().as_millis(),
        refetched_damaged: archive.take_refetched_damaged()?,
        not_kept: archive.take_not_carried()?,
    };
    if ctx.json {
        return ctx.json(&report);
    }
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    ctx.line(format!(
        "同步完成：收到 {} 份档案的新内容；发送 {} 字节，接收 {} 字节；用时 {:.1} 秒。",
        report.documents_changed,
        report.bytes_sent,
        report.bytes_received,
        start.elapsed().as_secs_f64()
    ))?;
    if !report.refetched_damaged.is_empty() {
        ctx.line(refetched_line(&report.refetched_damaged))?;
    }
    for line in not_kept_lines(&report.not_kept) {
        ctx.line(line)?;
    }
    Ok(())
}

/// What `sync` and `import` say of work written here and not sent that could not be kept (a
/// re-based file could not take it, or it went with a file: each line says which and why).
pub(crate) fn not_kept_lines(lines: &[String]) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["以下在本机写下、还没有同步的内容没有保留：".to_owned()];
    out.extend(lines.iter().map(|l| format!("  {l}")));
    out
}

/// What `sync` says of documents found damaged here and fetched again.
fn refetched_line(names: &[String]) -> String {
    format!(
        "本机损坏的档案已从学校服务器重新取回：{}。损坏前在其中写下、还没有同步的内容无法恢复，请核对后重新录入。",
        names.join("、")
    )
}

/// How often `sync --live` looks for records other `shouwang` processes wrote to the store.
const LIVE_LOOK: Duration = Duration::from_secs(1);

/// `shouwang sync --live`: stays connected to the hub for `seconds`. Records written to this
/// store (by other `shouwang` commands) go out within about a second; what other devices bring
/// to the hub arrives as it comes. The hub closes a connection idle for a minute; this one then
/// reconnects at once (one small frame each way).
pub fn sync_live(ctx: &mut Ctx, seconds: u64) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    drop(archive);
    let rt = runtime()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    if !ctx.json {
        ctx.line(format!(
            "已连接学校服务器，保持同步 {seconds} 秒：本机的新记录随时发出，其他设备的记录随时收到。按 Ctrl-C 结束。"
        ))?;
        ctx.out.flush()?;
    }
    let wake = Wake::new();
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut failures = 0u32;
    rt.block_on(async {
        let node = id.bind(false).await.map_err(net_error)?;
        let looker = {
            let wake = wake.clone();
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LIVE_LOOK).await;
                    wake.wake();
                }
            }))
        };
        let opts = ConversationOptions {
            wake: Some(wake.clone()),
            ..ctx.conversation_options()
        };
        let result = loop {
            let archive = match ctx.open() {
                Ok(a) => a,
                Err(e) => break Err(e),
            };
            // Reports each frame that brought changes: how many documents are new to the
            // count (at least the one changed again).
            let arrived_tx = arrived_tx.clone();
            let (mut arrivals, mut docs) = (0, 0);
            let hook: ProgressHook = Box::new(move |p| {
                if p.arrivals > arrivals {
                    let _ = arrived_tx.send((p.docs_changed - docs).max(1));
                    (arrivals, docs) = (p.arrivals, p.docs_changed);
                }
            });
            let session = device::sync_hub_live(&node, &id, archive, &opts, Some(hook));
            tokio::pin!(session);
            let ended = loop {
                tokio::select! {
                    ended = &mut session => break Some(ended),
                    () = tokio::time::sleep_until(deadline) => break None,
                    Some(n) = arrived.recv() => {
                        if !ctx.json {
                            let _ = ctx.line(format!(
                                "{} 收到其他设备的新内容：{n} 份档案。",
                                chrono::Local::now().format("%H:%M:%S")
                            ));
                            let _ = ctx.out.flush();
                        }
                    }
                }
            };
            match ended {
                None => break Ok(()),
                Some(Ok(())) => failures = 0, // idle: reconnect
                // The school revoked this device and its store is wiped: nothing to retry.
                Some(Err(e @ TransportError::Conversation(shouwang_core::Error::Revoked))) => {
                    break Err(net_error(e));
                }
                Some(Err(e)) => {
                    failures += 1;
                    if failures >= 3 {
                        break Err(net_error(e));
                    }
                    eprintln!("{e}，5 秒后重连");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break Ok(());
            }
        };
        drop(looker);
        node.shutdown().await;
        result
    })?;
    if !ctx.json {
        ctx.line("保持同步结束。")?;
    }
    Ok(())
}

/// A one-line progress bar on stderr: documents settled of those being synced, bytes both
/// ways, and the time left estimated from the share of documents done so far.
fn progress_bar(start: Instant) -> ProgressHook {
    Box::new(move |p| {
        let total = p.docs_syncing.max(1);
        let done = p.docs_settled.min(total);
        let width = 20;
        let filled = done * width / total;
        let elapsed = start.elapsed().as_secs_f64();
        let left = if done == 0 {
            "估算中".to_owned()
        } else {
            format!("约 {:.0} 秒", elapsed * (total - done) as f64 / done as f64)
        };
        eprint!(
            "\r[{}{}] 档案 {done}/{total}  收发 {} 字节  剩余 {left}   ",
            "#".repeat(filled),
            "-".repeat(width - filled),
            p.bytes_sent + p.bytes_received
        );
        let _ = std::io::stderr().flush();
    })
}

/// `shouwang status`: when the last sync succeeded and what the hub has not confirmed.
pub fn status(ctx: &mut Ctx) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    let hub = id.hub()?.id.to_string();
    let status = archive.sync_status(&hub)?;
    let (_, warning) = id.certificate_warning(chrono::Utc::now().timestamp());
    if ctx.json {
        return ctx.json(&status);
    }
    // With the clock plainly wrong, the certificate's dates say nothing (the hub judges it by
    // its own clock): the clock is what to fix.
    match clock_warning(&mut archive)? {
        Some(w) => ctx.line(format!(
            "{w}（证书有效期和同步时间都按本机时间显示，也不准）"
        ))?,
        None => {
            if let Some(w) = warning {
                ctx.line(w)?;
            }
        }
    }
    match status.last_success {
        Some(ms) => {
            let when = chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            ctx.line(format!("上次成功同步：{when}"))?;
        }
        None => ctx.line("还没有成功同步过。")?,
    }
    if let Some(e) = &status.last_error {
        ctx.line(format!("上次同步出错：{e}"))?;
    }
    // Where a user who worries about a lost phone or a leak looks first.
    let officer = archive.school()?.privacy_officer.clone();
    ctx.line(super::privacy::officer_line(officer.as_ref()))?;
    if !status.refused.is_empty() {
        ctx.line("学校服务器拒绝了本机的这些修改（不会再发送）：")?;
        for (label, n, why) in &status.refused {
            ctx.line(format!("  {label}：{n} 项，{why}"))?;
        }
    }
    if status.pending.is_empty() {
        ctx.line("学校服务器已有本机的全部内容。")
    } else {
        ctx.line(format!(
            "学校服务器还没有收到这些档案的修改（{} 份，本机新写记录 {} 条）：",
            status.pending.len(),
            status.records_since
        ))?;
        for (_, label) in &status.pending {
            ctx.line(format!("  {label}"))?;
        }
        ctx.line("联网后运行 shouwang sync。")
    }
}

/// Parses `设备码` or `设备码@地址:端口`.
fn parse_peer(text: &str) -> Result<EndpointAddr> {
    let bad = || CliError::msg("设备码填写有误：应是对方 shouwang sync --wait 显示的设备码");
    let (code, addr) = match text.trim().split_once('@') {
        Some((code, addr)) => (code, Some(addr)),
        None => (text.trim(), None),
    };
    let id = EndpointId::from_str(code).map_err(|_| bad())?;
    let mut peer = EndpointAddr::new(id);
    if let Some(addr) = addr {
        let addr = addr
            .parse()
            .map_err(|_| CliError::msg("地址填写有误：应写成 地址:端口，例如 192.168.43.1:4433"))?;
        peer = peer.with_ip_addr(addr);
    }
    Ok(peer)
}

#[derive(Serialize)]
struct PeerReport<'a> {
    peer: &'a str,
    documents_changed: usize,
    bytes_sent: u64,
    bytes_received: u64,
}

/// `shouwang sync --peer <设备码>`: syncs directly with another member's device, found on the
/// local network by its code or at the address given.
pub fn sync_peer(ctx: &mut Ctx, peer: &str) -> Result<()> {
    let peer = parse_peer(peer)?;
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    let rt = runtime()?;
    if !ctx.json {
        eprintln!("正在连接对方设备……");
    }
    let (_archive, synced) = rt.block_on(async {
        let node = id.bind(true).await.map_err(net_error)?;
        let r = device::sync_peer(&node, &id, peer, archive, &ctx.conversation_options())
            .await
            .map_err(net_error);
        node.shutdown().await;
        r
    })?;
    let p = &synced.progress;
    if ctx.json {
        return ctx.json(&PeerReport {
            peer: &synced.member.name,
            documents_changed: p.docs_changed,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
        });
    }
    ctx.line(format!(
        "已与{}的设备同步：收到 {} 份档案的新内容；发送 {} 字节，接收 {} 字节。",
        synced.member.name, p.docs_changed, p.bytes_sent, p.bytes_received
    ))
}

#[derive(Serialize)]
struct Waiting {
    device: String,
    port: u16,
}

/// `shouwang sync --wait`: lets nearby devices sync with this one for `seconds` (or until the
/// first completed exchange with `once`). Only members of the same school get in, and each
/// sees only what both members may see.
pub fn wait_for_peers(ctx: &mut Ctx, seconds: u64, once: bool) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    drop(archive);
    let rt = runtime()?;
    let mut server = rt
        .block_on(device::serve_peers(&id, &ctx.store, ctx.key.clone(), true))
        .map_err(net_error)?;
    let port = server.port();
    let waiting = Waiting {
        device: id.device_code(),
        port,
    };
    if ctx.json {
        ctx.json(&waiting)?;
    } else {
        ctx.line(format!("本机设备码：{}", waiting.device))?;
        ctx.line(format!(
            "请对方在同一 Wi-Fi 或热点下运行：shouwang sync --peer {}（端口 {port}）",
            waiting.device
        ))?;
    }
    ctx.out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut synced = 0usize;
    rt.block_on(async {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, server.synced.recv()).await {
                Ok(Some(outcome)) => {
                    synced += 1;
                    if !ctx.json {
                        let _ = ctx.line(format!(
                            "已与{}的设备同步：收到 {} 份档案的新内容。",
                            outcome.member_name, outcome.progress.docs_changed
                        ));
                        let _ = ctx.out.flush();
                    }
                    if once {
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        server.shutdown().await;
    });
    if synced == 0 && !ctx.json {
        ctx.line("等待结束，没有设备来同步。")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct NearbyDevice {
    device: String,
    addresses: Vec<String>,
}

/// `shouwang nearby`: devices on the same network that are waiting to sync.
pub fn nearby(ctx: &mut Ctx, seconds: u64) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    let rt = runtime()?;
    let found = rt.block_on(async {
        let node = id.bind(true).await.map_err(net_error)?;
        let found = node.nearby(Duration::from_secs(seconds)).await;
        node.shutdown().await;
        Ok::<_, CliError>(found)
    })?;
    let list: Vec<NearbyDevice> = found
        .iter()
        .map(|a| NearbyDevice {
            device: a.id.to_string(),
            addresses: a.ip_addrs().map(ToString::to_string).collect(),
        })
        .collect();
    if ctx.json {
        return ctx.json(&list);
    }
    if list.is_empty() {
        return ctx.line("附近没有发现等待同步的设备。请让对方运行 shouwang sync --wait。");
    }
    for d in &list {
        ctx.line(format!("{}  {}", d.device, d.addresses.join(", ")))?;
    }
    ctx.line("用 shouwang sync --peer <设备码> 与其中一台同步。")
}
