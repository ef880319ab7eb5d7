//! Network commands: joining with an invite ticket, syncing with the school's hub, and the
//! sync status. The device's network identity (its iroh secret key, its membership
//! certificate and the invite naming the hub and relay) is kept in the store's `meta` table.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use shouwang_core::Archive;
use shouwang_core::membership::{Certificate, Invite};
use shouwang_relay::handshake;
use shouwang_relay::syncing::{ProgressHook, sync_with_progress};
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, SecretKey, TransportError};

use super::Ctx;
use super::school::{check_new_store, report_joined};
use crate::error::{CliError, Result};

const META_SECRET: &str = "net.secret";
const META_CERTIFICATE: &str = "net.certificate";
const META_INVITE: &str = "net.invite";

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::msg(format!("无法启动网络：{e}")))
}

fn net_error(e: TransportError) -> CliError {
    match e {
        TransportError::Conversation(core) => core.into(),
        other => CliError::msg(format!("连接学校服务器失败：{other}。请检查网络后再试")),
    }
}

fn opts() -> ConversationOptions {
    ConversationOptions {
        connect_timeout: Duration::from_secs(30),
        ..ConversationOptions::default()
    }
}

async fn bind(secret: SecretKey, invite: &Invite) -> Result<Node> {
    let mut config = NodeConfig::new(secret);
    if let Some(relay) = handshake::invite_relay(invite)? {
        config = config.with_relay(relay);
    }
    Node::bind(config).await.map_err(net_error)
}

/// `shouwang join <ticket>`: enrolls this device with the hub and sets up the store from the
/// member's documents. Nothing is written if any step fails.
pub fn join(ctx: &mut Ctx, ticket: &str, device: Option<&str>) -> Result<()> {
    check_new_store(&ctx.store)?;
    let invite = Invite::decode(ticket.trim())?;
    invite.check_valid(unix_now())?;
    let secret = SecretKey::generate();
    let rt = runtime()?;
    let enrolled = rt.block_on(async {
        let node = bind(secret.clone(), &invite).await?;
        let r = handshake::enroll(&node, &invite, unix_now(), &opts())
            .await
            .map_err(net_error);
        node.shutdown().await;
        r
    })?;
    let label = device.map_or_else(|| "手机".to_owned(), str::to_owned);
    let mut archive = Archive::join(&ctx.store, &enrolled.bundle, invite.member.as_str(), &label)?;
    let certificate = enrolled.certificate.encode();
    let ticket = ticket.trim().to_owned();
    archive.store().write(|b| {
        b.set_meta(META_SECRET, &hex::encode(secret.to_bytes()));
        b.set_meta(META_CERTIFICATE, &certificate);
        b.set_meta(META_INVITE, &ticket);
        Ok(())
    })?;
    report_joined(ctx, &mut archive)?;
    ctx.line("以后联网时运行 shouwang sync 与学校服务器同步。")
}

struct Identity {
    secret: SecretKey,
    certificate: Certificate,
    invite: Invite,
}

fn identity(archive: &mut Archive) -> Result<Identity> {
    let store = archive.store();
    let get = |k: &str| store.meta(k);
    let (Some(secret), Some(cert), Some(invite)) =
        (get(META_SECRET)?, get(META_CERTIFICATE)?, get(META_INVITE)?)
    else {
        return Err(CliError::msg(
            "这台设备还没有通过邀请码加入学校服务器，请先运行 shouwang join <邀请码>",
        ));
    };
    let secret = hex::decode(&secret)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(|b| SecretKey::from_bytes(&b))
        .ok_or_else(|| CliError::msg("设备密钥已损坏，请重新加入"))?;
    Ok(Identity {
        secret,
        certificate: Certificate::decode(&cert)?,
        invite: Invite::decode(&invite)?,
    })
}

#[derive(Serialize)]
struct SyncReport {
    documents_changed: usize,
    frames_sent: u64,
    frames_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    millis: u128,
}

/// `shouwang sync`: one exchange with the hub until both sides have everything.
pub fn sync(ctx: &mut Ctx) -> Result<()> {
    let mut archive = ctx.open()?;
    let id = identity(&mut archive)?;
    let hub = handshake::hub_addr(&id.invite)?;
    let rt = runtime()?;
    let start = Instant::now();
    if !ctx.json {
        eprintln!("正在连接学校服务器……");
    }
    let hook = (!ctx.json && std::io::stderr().is_terminal()).then(|| progress_bar(start));
    let (_archive, p) = rt.block_on(async {
        let node = bind(id.secret.clone(), &id.invite).await?;
        let r = sync_with_progress(&node, hub, archive, &id.certificate, &opts(), hook)
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
    ))
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
    let hub = handshake::hub_addr(&id.invite)?.id.to_string();
    let status = archive.sync_status(&hub)?;
    if ctx.json {
        return ctx.json(&status);
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
