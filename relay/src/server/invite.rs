//! Setting up a school on the hub, and issuing invites (text, terminal QR code, PNG).

use std::net::SocketAddr;
use std::path::Path;

use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode};
use shouwang_core::archive::SchoolSetup;
use shouwang_core::membership::{DeviceKey, Invite, InviteSecret};
use shouwang_core::roles::Role;
use shouwang_core::{Archive, Error};

use shouwang_core::store::{StoreKey, cipher};

use super::data::{DataDir, IssuedInvite, open_archive_with};
use crate::keyfile::write_private_new;

/// Sets up a school in a hub's data directory: the data key where its source says (a key
/// file is created if missing; an environment variable or a credential must be set), the
/// directory (0700), `hub.db` encrypted with the data key, and both keys sealed with it. A
/// bad setup or a missing key is refused before any file is created.
pub fn init_school(data: &DataDir, setup: &SchoolSetup) -> Result<Archive, Error> {
    refuse_if_initialised(data)?;
    // The school is made in memory first and copied, encrypted, into hub.db: no page of it is
    // ever written in clear, and a bad setup is refused before anything exists.
    let mut school = Archive::create_school(Path::new(":memory:"), setup)?;
    adopt_archive(data, &mut school)
}

/// Sets up a hub's data directory (as [`init_school`] does) around a copy of `source`, an
/// office archive that already holds its school: the copy in `hub.db` is encrypted with the
/// data key (plain for a bench-only plain store, `super::data`). `source` is not changed.
pub fn adopt_archive(data: &DataDir, source: &mut Archive) -> Result<Archive, Error> {
    refuse_if_initialised(data)?;
    data.key_source().check_outside(data.root())?;
    // A build without SQLCipher is refused before any file is made.
    cipher::ready()?;
    let (key, _) = data.key_source().load_or_create()?;
    data.create_root()?;
    let path = data.archive();
    // Created 0600 before SQLite opens it: its -wal and -shm files take the same mode.
    write_private_new(&path, b"")?;
    let store_key = data.archive_key(&key);
    // Every store connection is opened after SQLCipher's set-up, so it has `sqlcipher_export`
    // (`shouwang_core::store::cipher`).
    export_encrypted(source.store().conn(), &path, store_key.as_ref())?;
    data.create_keys(&key)?;
    open_archive_with(&path, store_key.as_ref(), data.key_source())
}

fn refuse_if_initialised(data: &DataDir) -> Result<(), Error> {
    if data.is_initialised() || data.archive().exists() {
        return Err(Error::NotPermitted(format!(
            "{} 里已经有一所学校",
            data.root().display()
        )));
    }
    Ok(())
}

/// Copies the database open on `conn` into the empty file at `path`, encrypted with `key`
/// (SQLCipher's `sqlcipher_export`), schema version included. `None` (only for a bench-only
/// plain store, `super::data`) attaches with SQLCipher's empty key: a plain SQLite file.
pub(crate) fn export_encrypted(
    conn: &rusqlite::Connection,
    path: &Path,
    key: Option<&StoreKey>,
) -> Result<(), Error> {
    let file = path
        .to_str()
        .ok_or_else(|| Error::invalid("数据目录", "路径必须是 UTF-8"))?;
    let raw = key.map_or_else(String::new, |k| format!("x'{}'", hex::encode(k.as_bytes())));
    conn.execute("ATTACH DATABASE ?1 AS sealed KEY ?2", [file, raw.as_str()])?;
    let version: i64 = conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
    conn.query_row("SELECT sqlcipher_export('sealed')", [], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "PRAGMA sealed.user_version = {version}; DETACH DATABASE sealed;"
    ))?;
    Ok(())
}

/// Where devices reach the hub, for invites.
#[derive(Debug, Clone)]
pub struct HubContact {
    pub relay_url: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

/// An invite just issued.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub invite: Invite,
    /// The text ticket (`shouwang1…`).
    pub ticket: String,
    /// The member's name.
    pub member_name: String,
    /// Whether the member was added to the school for this invite.
    pub member_added: bool,
}

/// Issues an invite for the member named `member` (name or id; added with `role` if the
/// school has no such member), valid until `expires_at`. See [`issue_member_invite`].
pub fn issue_invite(
    data: &DataDir,
    contact: &HubContact,
    member: &str,
    role: Role,
    now: i64,
    expires_at: i64,
) -> Result<NewInvite, Error> {
    issue_member_invite(data, contact, member, Some(role), now, expires_at)
}

/// Issues an invite for the member named `member` (name or id), valid until `expires_at`.
/// A member the school does not have is added with `role` (required then). An existing member
/// is invited with `role` only if they already hold it (an invite never changes roles: the
/// certificate carries the roles the school document gives), or, without `role`, with their
/// first role; asking for a role they do not hold is refused with the roles they have, and
/// nothing is written.
pub fn issue_member_invite(
    data: &DataDir,
    contact: &HubContact,
    member: &str,
    role: Option<Role>,
    now: i64,
    expires_at: i64,
) -> Result<NewInvite, Error> {
    data.check_initialised()?;
    data.check_not_rebuilding()?;
    let key = data.data_key()?;
    let school_key = data.school_key_with(&key)?;
    let hub = data.hub_key_with(&key)?.public();
    let store_key = data.archive_key(&key);
    let mut archive = open_archive_with(&data.archive(), store_key.as_ref(), data.key_source())?;
    let (m, role, added) = match archive.find_member(member) {
        Ok(m) => {
            // An administrator's device is enrolled as an administrator's (the hub refuses an
            // invite for less once she administers: the certificate carries all her roles).
            let administers = m.roles.iter().any(|r| r.administers());
            let role = match role {
                Some(r) if administers && !r.administers() => {
                    return Err(Error::NotPermitted(format!(
                        "{} 是管理员（{}），请按管理员角色邀请这位成员的设备",
                        m.name,
                        m.role_labels()
                    )));
                }
                Some(r) if m.has(r) => r,
                Some(r) => {
                    let held = if m.roles.is_empty() {
                        "还没有任何角色".to_owned()
                    } else {
                        format!("现有角色：{}", m.role_labels())
                    };
                    return Err(Error::NotPermitted(format!(
                        "{} 已是学校成员（{held}），没有“{}”角色；邀请不会改变角色，\
                         请按现有角色邀请，或不写 --role",
                        m.name,
                        r.label()
                    )));
                }
                None => *m
                    .roles
                    .iter()
                    .find(|r| r.administers())
                    .or_else(|| m.roles.first())
                    .ok_or_else(|| {
                        Error::NotPermitted(format!("{} 还没有任何角色，不能邀请", m.name))
                    })?,
            };
            (m, role, false)
        }
        Err(Error::NotFound { .. }) => {
            let role = role.ok_or_else(|| {
                Error::Missing(format!(
                    "角色（“{}”还不是学校成员，请用 --role 指定）",
                    member.trim()
                ))
            })?;
            let id = archive.add_member(member, &[role], None, None)?;
            (archive.find_member(id.as_str())?, role, true)
        }
        Err(e) => return Err(e),
    };
    if !m.active {
        return Err(Error::NotPermitted(format!("{} 已停用，不能邀请", m.name)));
    }
    let school = archive.school()?;
    let invite = Invite {
        school_id: archive.school_id().clone(),
        school_name: school.name.clone(),
        school_key: school_key.public(),
        hub: DeviceKey(*hub.as_bytes()),
        hub_addrs: contact.addrs.iter().take(8).copied().collect(),
        relay_url: contact.relay_url.clone(),
        role,
        member: m.id.clone(),
        secret: InviteSecret::random(),
        expires_at,
    };
    let ticket = invite.encode()?;
    data.record_invite(
        &invite.secret,
        &IssuedInvite {
            member: m.id.clone(),
            role,
            issued_at: now,
            expires_at,
        },
    )?;
    Ok(NewInvite {
        invite,
        ticket,
        member_name: m.name,
        member_added: added,
    })
}

fn qr(ticket: &str) -> Result<QrCode, Error> {
    // Upper case keeps the ticket in QR's compact alphanumeric mode; decoding ignores case.
    QrCode::with_error_correction_level(ticket.to_ascii_uppercase(), EcLevel::M)
        .map_err(|e| Error::invalid("二维码", e.to_string()))
}

/// The ticket as a QR code drawn with half-block characters, for a terminal.
pub fn qr_terminal(ticket: &str) -> Result<String, Error> {
    Ok(qr(ticket)?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Writes the ticket as a QR code PNG (black on white, `scale` pixels per module).
pub fn qr_png(ticket: &str, path: &Path, scale: usize) -> Result<(), Error> {
    let code = qr(ticket)?;
    let modules = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let scale = scale.clamp(1, 32);
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (x, y) = (i % modules + quiet, i / modules + quiet);
        for dy in 0..scale {
            let row = (y * scale + dy) * side;
            pixels[row + x * scale..row + (x + 1) * scale].fill(0);
        }
    }
    // The ticket in it enrolls a device: owner only.
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    let side32 = u32::try_from(side).map_err(|_| Error::invalid("二维码", "太大"))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| Error::invalid("二维码图片", e.to_string());
    let mut w = enc.write_header().map_err(png_err)?;
    w.write_image_data(&pixels).map_err(png_err)?;
    w.finish().map_err(png_err)?;
    Ok(())
}
