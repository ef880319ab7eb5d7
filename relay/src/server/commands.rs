//! What the `shouwang-relay` subcommands do, returning the text they print (so they can be
//! tested without a terminal). `main.rs` only parses flags and loads the configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use shouwang_core::archive::SchoolSetup;
use shouwang_core::roles::Role;

use super::hub::unix_now;
use super::reach::{Reach, summary};
use super::{HubContact, KeySource, ServerConfig, ServerError, init_school, issue_member_invite};
use super::{qr_png, qr_terminal};

/// `init-school`: the archive and both keys; returns the report to print.
pub fn init_school_command(
    config: &ServerConfig,
    name: &str,
    town: &str,
    admin: &str,
    admin_role: &str,
    hotline: Option<&str>,
) -> Result<String, ServerError> {
    config.check()?;
    let data = config.data();
    let key_existed = match data.key_source() {
        KeySource::File(p) => p.exists(),
        _ => true,
    };
    let setup = SchoolSetup {
        name: name.to_owned(),
        town: town.to_owned(),
        hotline: hotline.map(str::to_owned),
        admin_name: admin.to_owned(),
        admin_role: Role::parse(admin_role)?,
        device_label: "学校服务器".into(),
    };
    let archive = init_school(&data, &setup)?;
    let hub = data.hub_key()?.public();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "已建立学校：{}（编号 {}）",
        setup.name,
        archive.school_id()
    );
    let _ = writeln!(
        out,
        "数据目录：{}（只有本机用户可读；档案库和密钥文件都已加密）",
        data.root().display()
    );
    let _ = writeln!(
        out,
        "数据密钥：{}{}（不在数据目录里；没有它谁也打不开这些数据，请另外妥善备份）",
        data.key_source(),
        if key_existed {
            "，沿用已有的"
        } else {
            "，刚刚生成"
        }
    );
    let _ = writeln!(out, "服务器编号：{hub}");
    let _ = writeln!(
        out,
        "下一步：shouwang-relay invite --role 班主任 --member 姓名"
    );
    Ok(out)
}

/// Writes a configuration file's new text (from [`super::reach::apply`]) in place of the
/// old one, atomically (a temporary file beside it, renamed over it; the old file's mode
/// kept, 0644 for a new one); returns what to print.
pub fn write_config(path: &Path, text: &str, reach: &Reach) -> Result<String, ServerError> {
    let io = |e: std::io::Error| {
        ServerError::Refused(format!(
            "写不了配置文件 {}：{}",
            path.display(),
            shouwang_core::error::io_text(&e)
        ))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mode = std::fs::metadata(path).map_or(0o644, |m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o7777
    });
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)?;
    Ok(format!(
        "已写入配置 {}：手机经 {} 连接服务器（serve 和 invite 都读这个文件）\n",
        path.display(),
        summary(reach)
    ))
}

/// `backup --out FILE`: a consistent copy of the data directory while the server runs.
pub fn backup_command(config: &ServerConfig, out: &Path) -> Result<String, ServerError> {
    let data = config.data();
    let r = super::backup(&data, out)?;
    let ledger = match &r.ledger_problem {
        None => format!(
            "学校删除过哪些学生的档案，记在同一目录的 {}（恢复任何一份备份时都会用到，请不要删除它）。\n",
            super::backup::LEDGER
        ),
        Some(why) => format!(
            "注意：没能更新同一目录的 {}（{why}）；备份本身完好。恢复比这更早的备份时，之后删除的学生档案会先回来，直到管理员的设备同步。\n",
            super::backup::LEDGER
        ),
    };
    let mut swept = String::new();
    if !r.swept.is_empty() {
        swept += &format!(
            "已从同一目录的 {} 份旧备份里删除已注销学生的档案（学校删除过 {} 名学生的档案）：{}\n",
            r.swept.len(),
            r.erasures,
            r.swept
                .iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                .collect::<Vec<_>>()
                .join("、")
        );
    }
    for (path, why) in &r.sweep_problems {
        swept += &format!(
            "注意：旧备份 {} 里还有已注销学生的档案，没能删除（{why}）；新备份本身完好。\n",
            path.display()
        );
    }
    Ok(format!(
        "已把{}的学校服务器数据备份到 {}（{} 字节，另含 {} 个密钥和邀请文件）。\n\
         备份用数据密钥加密（{}）；恢复时需要同一把数据密钥，请把密钥另外妥善保存，不要和备份放在一起。\n",
        r.school,
        out.display(),
        r.bytes,
        r.files,
        data.key_source()
    ) + &ledger
        + &swept)
}

/// `restore --from FILE`: the data directory from a backup, into a fresh directory.
pub fn restore_command(config: &ServerConfig, from: &Path) -> Result<String, ServerError> {
    let data = config.data();
    let r = super::restore(&data, from)?;
    let erased = if r.erasures > 0 {
        format!(
            "学校删除过的 {} 名学生的档案不在恢复后的数据里（按备份目录里的删除记录）。\n",
            r.erasures
        )
    } else {
        String::new()
    };
    let notes = if r.no_ledger {
        format!(
            "{erased}注意：备份文件旁边没有 {ledger}（学校删除学生档案的记录）。如果学校在这份备份之后删除过学生的档案，\
             请删掉刚恢复的数据目录，把原备份文件夹里的 {ledger} 和备份文件放在一起，再恢复一次；\
             否则那些档案会回到服务器上，直到管理员的设备同步。\n",
            ledger = super::backup::LEDGER
        )
    } else {
        erased
    };
    Ok(format!(
        "已从 {} 恢复{}的学校服务器数据到 {}。\n{notes}\
         下一步：shouwang-relay serve；设备下次同步时会把备份之后的修改补交给服务器。\n",
        from.display(),
        r.school,
        data.root().display()
    ))
}

/// `revoke`: revokes a device (by its code or id) or deactivates a member with every device of
/// theirs, in the hub's archive; returns what to print.
pub fn revoke_command(
    config: &ServerConfig,
    device: Option<&str>,
    member: Option<&str>,
) -> Result<String, ServerError> {
    let mut archive = config.data().open_archive()?;
    Ok(match (device, member) {
        (Some(code), _) => {
            let d = archive.revoke_device(code)?;
            format!(
                "已停用 {} 的设备“{}”（{}）：服务器从此拒绝它，它下次连上时会清除本机档案。\n",
                d.member, d.label, d.id
            )
        }
        (None, Some(name)) => {
            let n = archive.deactivate_member(name)?;
            format!("已停用成员 {}，以及其 {n} 台设备。\n", name.trim())
        }
        (None, None) => String::new(),
    })
}

/// `admit-phones`: while a restored hub waits for an administrator's device, lets the devices
/// the backup registers sync, for a school that has no administrator's device that can sync
/// first (its only one was on the PC whose disk died). The hub still writes nothing of its
/// own (no enrollment, invite or console edit: its lost changes would be numbered again) until
/// an administrator's device has synced; a device revoked since the backup is not known as
/// revoked until then.
pub fn admit_phones_command(config: &ServerConfig) -> Result<String, ServerError> {
    let data = config.data();
    data.check_initialised()?;
    let mark = data.rebuilding_marker();
    if !mark.exists() {
        return Err(ServerError::Refused(
            "学校服务器没有在等待恢复后的第一次同步，无需这样做".into(),
        ));
    }
    std::fs::write(&mark, super::data::ADMIT_PHONES).map_err(shouwang_core::Error::from)?;
    Ok("备份里已登记的手机现在可以同步了。学校服务器仍不登记新设备、不发邀请、不开网页，直到管理员的设备同步一次；备份之后停用的设备，在那之前服务器也不知道。\n".into())
}

/// `encrypt-data`: converts a data directory from before encryption at rest, in place, with
/// the data key where the configuration puts it (see [`super::encrypt_data`]).
pub fn encrypt_data_command(config: &ServerConfig) -> Result<String, ServerError> {
    let data = config.data();
    Ok(match super::encrypt_data(&data)? {
        super::Converted::Encrypted { documents } => format!(
            "已把 {} 转换为加密格式：{documents} 份档案，数据密钥在{}。旧的未加密文件已清除。\n",
            data.root().display(),
            data.key_source()
        ),
        super::Converted::AlreadyEncrypted => {
            format!("{} 已经是加密格式，无需转换。\n", data.root().display())
        }
    })
}

/// `devices`: every registered device with its member, name and standing (a revoked device
/// that reached the hub and wiped itself shows what it had not delivered); one line each.
pub fn devices_command(config: &ServerConfig) -> Result<String, ServerError> {
    let mut archive = config.data().open_archive()?;
    let mut out = String::new();
    for d in archive.devices()? {
        let _ = writeln!(out, "{}  {}  {}  {}", d.id, d.member, d.label, d.status());
    }
    if out.is_empty() {
        out.push_str("还没有登记的设备。\n");
    }
    Ok(out)
}

/// `deliveries`: the hub's delivery log (which documents went to which device, and when),
/// newest first, optionally of one device and of one child's documents. Member names come
/// from the school document; a child is shown by id (the log holds ids only).
pub fn deliveries_command(
    config: &ServerConfig,
    device: Option<&str>,
    child: Option<&str>,
    limit: Option<usize>,
) -> Result<String, ServerError> {
    let mut archive = config.data().open_archive()?;
    let rows = archive.deliveries(&shouwang_core::archive::DeliveryFilter {
        device: device.map(str::to_owned),
        child: child.map(str::to_owned),
        limit,
    })?;
    let mut out = String::new();
    for d in &rows {
        let at = chrono::DateTime::from_timestamp(d.at, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{at}  {}  {}  {}", d.device, d.member_name, d.doc);
    }
    if out.is_empty() {
        out.push_str("没有符合条件的发送记录。\n");
    } else {
        let _ = writeln!(out, "共 {} 条（最新的在前）", rows.len());
    }
    Ok(out)
}

/// `invite`: issues an invite from the configuration's addresses, writes the PNG, and returns
/// the report (ticket and terminal QR code) to print. `role` is required for a new member; for
/// an existing one it must be a role they hold (see [`issue_member_invite`]).
pub fn invite_command(
    config: &ServerConfig,
    member: &str,
    role: Option<&str>,
    days: Option<u32>,
    png: Option<PathBuf>,
) -> Result<String, ServerError> {
    config.check_reachable()?;
    let data = config.data();
    if let Some(png) = &png {
        refuse_png_place(data.root(), png)?;
    }
    let role = role.map(Role::parse).transpose()?;
    // A configuration of before the cap (`invite_days = 180`) still serves: taken as the cap.
    let days = days.unwrap_or(
        config
            .invite_days
            .min(shouwang_core::membership::MAX_INVITE_DAYS),
    );
    if !(1..=shouwang_core::membership::MAX_INVITE_DAYS).contains(&days) {
        return Err(ServerError::Refused(
            shouwang_core::membership::invite_days_refused(),
        ));
    }
    let contact = HubContact {
        relay_url: config.relay_url(),
        addrs: config.public_addrs(),
    };
    let now = unix_now();
    let issued = issue_member_invite(
        &data,
        &contact,
        member,
        role,
        now,
        now + i64::from(days) * 86_400,
    )?;
    // On the hub's access log, as the console logs its own, before the code is shown: whoever
    // scans it writes and reads as this member from then on.
    data.open_archive()?
        .log_invite(&issued.invite.member, issued.invite.role.label(), days)?;
    // The image is the ticket: written only where the administrator asks, never into the
    // data directory, where it would be the one way in a stolen PC offers without its data
    // key (the invites there are kept as digests of their secret).
    if let Some(png) = &png {
        qr_png(&issued.ticket, png, 8)?;
    }
    let mut out = String::new();
    if issued.member_added {
        let _ = writeln!(
            out,
            "已把 {}（{}）加入学校",
            issued.member_name,
            issued.invite.role.label()
        );
    }
    if contact.addrs.is_empty() {
        let _ = writeln!(
            out,
            "提示：配置里没有服务器的公网地址（[hub] public_addrs），设备将经中继连接"
        );
    }
    let _ = writeln!(
        out,
        "{} 的邀请码（{} 天内有效，只能用于一台设备）：\n\n{}\n",
        issued.member_name, days, issued.ticket
    );
    let _ = writeln!(out, "{}", qr_terminal(&issued.ticket)?);
    match &png {
        Some(png) => {
            let _ = writeln!(
                out,
                "二维码图片：{}（图片就是邀请码，交给本人后请删除）",
                png.display()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "要二维码图片可加 --png 文件（放在数据目录以外，交给本人后删除）"
            );
        }
    }
    let _ = writeln!(out, "在设备上运行：shouwang join <邀请码>");
    Ok(out)
}

/// Refuses a place for an invite's QR code image inside the data directory `root`, or in a
/// folder that is not there: checked before the invite is issued, so a refused `--png` issues
/// nothing.
fn refuse_png_place(root: &Path, png: &Path) -> Result<(), ServerError> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir = match png.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(ServerError::Refused(format!(
            "放二维码图片的文件夹 {} 不存在，没有生成邀请码",
            dir.display()
        )));
    }
    if canonical(dir).starts_with(canonical(root)) {
        return Err(ServerError::Refused(format!(
            "二维码图片不能放在数据目录 {} 里：图片就是邀请码，不加密，请换一个位置",
            root.display()
        )));
    }
    Ok(())
}

/// `office-password`: sets the office console password of a member who may log in (their
/// sessions end), stored hashed in `hub.db`.
pub fn office_password_command(
    config: &ServerConfig,
    member: &str,
    password: &str,
) -> Result<String, ServerError> {
    let data = config.data();
    data.check_initialised()?;
    let mut archive = data.open_archive()?;
    let m = shouwang_office::auth::set_password(&mut archive, member, password)?;
    let place = match config.http_bind {
        Some(bind) if config.console_tls() => format!(
            "在浏览器打开 https://{bind}/ 登录（学校局域网里用本机的局域网地址；浏览器提示证书时，核对 serve 启动时显示的证书指纹）"
        ),
        Some(bind) => format!("在浏览器打开 http://{bind}/ 登录（学校局域网里用本机的局域网地址）"),
        None => "配置里没有 [http] bind，办公室网页没有开启".to_owned(),
    };
    Ok(format!(
        "已设置 {}（{}）的办公室网页密码，此前的登录已失效；{place}\n",
        m.name,
        m.role_labels()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shouwang_core::membership::Invite;

    #[test]
    fn init_then_invite_prints_a_ticket_a_qr_code_and_writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path().join("hub"));
        let out =
            init_school_command(&config, "郭庄小学", "丁里镇", "张长友", "校长", None).unwrap();
        assert!(out.contains("已建立学校：郭庄小学"), "{out}");
        let again = init_school_command(&config, "郭庄小学", "丁里镇", "张长友", "校长", None);
        assert!(again.is_err());

        // With the defaults, the ticket would carry only 127.0.0.1: refused, nothing written.
        let png = dir.path().join("qr.png");
        let e = invite_command(&config, "刘桂兰", Some("爱心妈妈"), None, Some(png.clone()));
        assert!(e.unwrap_err().to_string().contains("--lan-addr"));
        assert!(!png.exists() && !config.data().root().join("invites").exists());
        config.relay_url = Some("http://10.0.0.5:3340/".into());
        config.hub_public_addrs = vec!["10.0.0.5:3341".parse().unwrap()];
        // An image for a folder that is not there: refused before the invite is issued (it
        // was issued and logged, then the image failed).
        let nowhere = dir.path().join("没有的文件夹").join("qr.png");
        let e = invite_command(&config, "刘桂兰", Some("爱心妈妈"), None, Some(nowhere));
        assert!(e.unwrap_err().to_string().contains("不存在"));
        assert!(!config.data().root().join("invites").exists());

        let out =
            invite_command(&config, "刘桂兰", Some("爱心妈妈"), None, Some(png.clone())).unwrap();
        assert!(out.contains("已把 刘桂兰（爱心妈妈）加入学校"), "{out}");
        assert!(out.contains('█') || out.contains('▀'), "{out}");
        let ticket = out.lines().find(|l| l.starts_with("shouwang1")).unwrap();
        let invite = Invite::decode(ticket).unwrap();
        assert_eq!(invite.role, Role::LoveMother);
        assert_eq!(invite.relay_url.as_deref(), Some("http://10.0.0.5:3340/"));
        assert_eq!(invite.hub_addrs, config.hub_public_addrs);
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");

        // The member exists now: a second invite does not add her again.
        let out = invite_command(&config, "刘桂兰", Some("爱心妈妈"), Some(1), Some(png)).unwrap();
        assert!(!out.contains("加入学校"), "{out}");
        let bad = invite_command(&config, "刘桂兰", Some("园长"), None, None).unwrap_err();
        assert!(bad.to_string().contains("角色"), "{bad}");
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn an_invite_with_a_role_the_existing_member_does_not_hold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::loopback(dir.path().join("hub"));
        init_school_command(&config, "郭庄小学", "丁里镇", "张长友", "校长", None).unwrap();
        let png = dir.path().join("qr.png");
        invite_command(&config, "刘桂兰", Some("爱心妈妈"), None, Some(png.clone())).unwrap();
        let data = config.data();
        let invites = files_in(&data.root().join("invites"));
        let db = std::fs::read(data.archive()).unwrap();

        // 校长 for a 爱心妈妈: refused, naming her current roles; no invite, no role written.
        let bad =
            invite_command(&config, "刘桂兰", Some("校长"), None, Some(png.clone())).unwrap_err();
        let msg = bad.to_string();
        assert!(msg.contains("刘桂兰"), "{msg}");
        assert!(msg.contains("爱心妈妈"), "names her current roles: {msg}");
        assert!(msg.contains("校长"), "{msg}");
        assert_eq!(files_in(&data.root().join("invites")), invites);
        assert_eq!(std::fs::read(data.archive()).unwrap(), db);
        let mut archive = data.open_archive().unwrap();
        assert_eq!(
            archive.find_member("刘桂兰").unwrap().roles,
            [Role::LoveMother]
        );

        // A role she holds still works, and so does no role at all.
        for role in [Some("爱心妈妈"), None] {
            let out = invite_command(&config, "刘桂兰", role, None, Some(png.clone())).unwrap();
            assert!(!out.contains("加入学校"), "{out}");
            let ticket = out.lines().find(|l| l.starts_with("shouwang1")).unwrap();
            assert_eq!(Invite::decode(ticket).unwrap().role, Role::LoveMother);
        }
        // A new member needs a role.
        let e = invite_command(&config, "郭明", None, None, Some(png)).unwrap_err();
        assert!(e.to_string().contains("--role"), "{e}");
        let mut archive = data.open_archive().unwrap();
        assert!(archive.find_member("郭明").is_err());
    }

    #[test]
    fn revoke_deactivates_a_member_and_refuses_an_unknown_device() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::loopback(dir.path().join("hub"));
        init_school_command(&config, "郭庄小学", "丁里镇", "张长友", "校长", None).unwrap();
        let png = dir.path().join("qr.png");
        invite_command(&config, "刘桂兰", Some("爱心妈妈"), None, Some(png)).unwrap();
        let out = revoke_command(&config, None, Some("刘桂兰")).unwrap();
        assert!(out.contains("已停用成员 刘桂兰"), "{out}");
        let mut archive = config.data().open_archive().unwrap();
        assert!(!archive.find_member("刘桂兰").unwrap().active);
        let e = revoke_command(&config, Some("abcdef12"), None).unwrap_err();
        assert!(e.to_string().contains("找不到设备"), "{e}");
    }
}
