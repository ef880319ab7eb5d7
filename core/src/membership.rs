//! Membership: the school's signing key, invites and membership certificates.
//!
//! Pure: no IO, and every check takes the current time (`now`, Unix seconds) as an argument.
//!
//! - A school has one ed25519 [`SchoolKey`], kept by its hub. Its public half travels in every
//!   invite, so a device can check what the hub gives it.
//! - An [`Invite`] is what an administrator hands a new device, as text (`shouwang1…`) or a QR
//!   code: the school, the hub's endpoint id and addresses, the relay, the role and member it is
//!   for, a one-time secret and an expiry.
//! - A [`Certificate`] is what the hub gives a device that presents a valid invite: the school
//!   key's signature over the school, the member, the member's roles, the device's key (its
//!   iroh endpoint id) and a validity window. Peers check it before any record flows.
//!
//! ## Text form
//!
//! ```text
//! ticket  = prefix base32(payload | check)       lower case, decoded case-insensitively
//! check   = SHA-256(prefix | payload)[..4]       catches typos before anything else
//! prefix  = "shouwang1" (invite) | "shouwangc1" (certificate)
//! ```
//!
//! Base32 keeps a ticket inside QR's compact alphanumeric mode (printed upper case there).
//!
//! ## Binary form
//!
//! Big-endian integers; `str` is `len:u8 | UTF-8`; `key` is 32 bytes.
//!
//! ```text
//! invite      = version:u8 (1) | school_id:str | school_name:str | school_key:key
//!               | hub:key | n:u8 | n × addr | relay:str (empty: none) | role:u8
//!               | member:str | secret:[u8; 16] | expires_at:i64
//! addr        = 4:u8 | ipv4:[u8; 4] | port:u16  or  6:u8 | ipv6:[u8; 16] | port:u16
//! certificate = body | signature:[u8; 64]
//! body        = version:u8 (1) | school_id:str | member:str | n:u8 | n × role:u8
//!               | device:key | issued_at:i64 | expires_at:i64
//! signed      = "shouwang/certificate/v1" | body
//! ```
//!
//! The version byte leaves room for what comes later (scope by pairing, revocation lists):
//! a decoder refuses a version it does not know with a message asking to update the app.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{MemberId, SchoolId};
use crate::roles::Role;

/// Prefix of an invite ticket.
pub const INVITE_PREFIX: &str = "shouwang1";
/// Prefix of a certificate in text form.
pub const CERTIFICATE_PREFIX: &str = "shouwangc1";
/// Version of the binary layouts.
const VERSION: u8 = 1;
/// What the school key signs before a certificate's body.
const CERT_DOMAIN: &[u8] = b"shouwang/certificate/v1";
/// Longest text field (ids, names, the relay URL), in bytes.
const MAX_STR: usize = 255;
/// Most direct addresses in an invite.
const MAX_ADDRS: usize = 8;
/// Longest ticket accepted, in characters.
const MAX_TICKET: usize = 2048;
/// Bytes of checksum in a ticket.
const CHECK_LEN: usize = 4;

const INVITE_LABEL: &str = "邀请码";
const CERT_LABEL: &str = "成员证书";

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The school's signing key. Its `Debug` shows only the public half.
pub struct SchoolKey(SigningKey);

impl fmt::Debug for SchoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SchoolKey").field(&self.public()).finish()
    }
}

impl SchoolKey {
    /// A new random key.
    pub fn generate() -> SchoolKey {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let key = SchoolKey(SigningKey::from_bytes(&secret));
        secret.fill(0);
        key
    }

    /// The key from its 32 secret bytes.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> SchoolKey {
        SchoolKey(SigningKey::from_bytes(secret))
    }

    /// The 32 secret bytes (to store in a file only its owner can read).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> SchoolPublicKey {
        SchoolPublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a certificate.
    pub fn issue(&self, body: CertificateBody) -> Result<Certificate> {
        body.check()?;
        let bytes = body.to_bytes();
        let signature = self.0.sign(&signed_message(&bytes)).to_bytes();
        Ok(Certificate { body, signature })
    }
}

/// A school's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchoolPublicKey([u8; 32]);

impl SchoolPublicKey {
    /// The key from 32 bytes; refuses bytes that are not a valid ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SchoolPublicKey> {
        VerifyingKey::from_bytes(bytes)
            .map(|_| SchoolPublicKey(*bytes))
            .map_err(|_| Error::invalid("学校公钥", "不是有效的公钥"))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SchoolPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchoolPublicKey({})", &self.to_hex()[..12])
    }
}

/// A device's public key: the 32 bytes of its iroh endpoint id. The hub's endpoint id uses the
/// same type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey(pub [u8; 32]);

/// The store `meta` key under which an enrolled device keeps the invite it joined with (which
/// names its hub).
pub const INVITE_META: &str = "net.invite";

/// The longest an invite may stay open, in days: while one is, the hub's gate and relay let
/// strangers in, and whoever holds its ticket (a chat, a photographed QR code) may enroll.
pub const MAX_INVITE_DAYS: u32 = 90;

/// Why a number of days for an invite is refused.
pub fn invite_days_refused() -> String {
    format!("有效天数请填 1 到 {MAX_INVITE_DAYS} 之间的整数")
}

impl DeviceKey {
    /// Lower-case hex (the same text as the iroh endpoint id).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The one-time secret of an invite. Its `Debug` hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteSecret(pub [u8; 16]);

impl InviteSecret {
    /// A new random secret.
    pub fn random() -> InviteSecret {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        InviteSecret(b)
    }

    /// A stable name for the secret that does not reveal it (hex of its SHA-256), for keeping
    /// track of issued and spent invites.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"shouwang/invite-secret");
        h.update(self.0);
        hex::encode(h.finalize())
    }
}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(…)")
    }
}

// ---------------------------------------------------------------------------------------------
// Invites
// ---------------------------------------------------------------------------------------------

/// An invitation for one device to join a school as a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub school_id: SchoolId,
    /// Shown to the person joining, so they can see which school they join.
    pub school_name: String,
    pub school_key: SchoolPublicKey,
    /// The hub's iroh endpoint id.
    pub hub: DeviceKey,
    /// Where the hub can be reached directly (may be empty: then through the relay).
    pub hub_addrs: Vec<SocketAddr>,
    /// The relay to use (`http://…` or `https://…`).
    pub relay_url: Option<String>,
    pub role: Role,
    pub member: MemberId,
    pub secret: InviteSecret,
    /// Unix seconds after which the invite is refused.
    pub expires_at: i64,
}

impl Invite {
    /// Whether the invite has expired at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        now > self.expires_at
    }

    /// Refuses an expired invite.
    pub fn check_valid(&self, now: i64) -> Result<()> {
        if self.is_expired(now) {
            return Err(Error::NotPermitted(
                "邀请码已过期，请让管理员重新生成邀请码".into(),
            ));
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        check_str(INVITE_LABEL, "学校编号", self.school_id.as_str(), true)?;
        check_str(INVITE_LABEL, "学校名称", &self.school_name, false)?;
        check_str(INVITE_LABEL, "成员编号", self.member.as_str(), true)?;
        if self.hub_addrs.len() > MAX_ADDRS {
            return Err(Error::invalid(INVITE_LABEL, "服务器地址太多"));
        }
        if let Some(url) = &self.relay_url {
            check_relay_url(url)?;
        }
        Ok(())
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut w = Vec::with_capacity(192);
        w.push(VERSION);
        put_str(&mut w, self.school_id.as_str());
        put_str(&mut w, &self.school_name);
        w.extend_from_slice(self.school_key.as_bytes());
        w.extend_from_slice(&self.hub.0);
        w.push(self.hub_addrs.len() as u8);
        for a in &self.hub_addrs {
            put_addr(&mut w, a);
        }
        put_str(&mut w, self.relay_url.as_deref().unwrap_or(""));
        w.push(role_code(self.role));
        put_str(&mut w, self.member.as_str());
        w.extend_from_slice(&self.secret.0);
        w.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(w)
    }

    /// Decodes and validates the binary form (not the expiry: see [`Invite::check_valid`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Invite> {
        let mut r = Reader::new(bytes, INVITE_LABEL);
        r.version()?;
        let school_id = SchoolId(r.str(true)?);
        let school_name = r.str(false)?;
        let school_key = SchoolPublicKey::from_bytes(&r.array::<32>()?)?;
        let hub = DeviceKey(r.array::<32>()?);
        let n = r.u8()? as usize;
        if n > MAX_ADDRS {
            return Err(r.bad("服务器地址太多"));
        }
        let mut hub_addrs = Vec::with_capacity(n);
        for _ in 0..n {
            hub_addrs.push(r.addr()?);
        }
        let relay = r.str(false)?;
        let relay_url = if relay.is_empty() {
            None
        } else {
            check_relay_url(&relay)?;
            Some(relay)
        };
        let role = role_from_code(r.u8()?)?;
        let member = MemberId(r.str(true)?);
        let secret = InviteSecret(r.array::<16>()?);
        let expires_at = r.i64()?;
        r.end()?;
        Ok(Invite {
            school_id,
            school_name,
            school_key,
            hub,
            hub_addrs,
            relay_url,
            role,
            member,
            secret,
            expires_at,
        })
    }

    /// The text ticket, `shouwang1…`.
    pub fn encode(&self) -> Result<String> {
        Ok(encode_text(INVITE_PREFIX, &self.to_bytes()?))
    }

    /// Decodes a text ticket, checking its checksum and every field (not the expiry).
    pub fn decode(text: &str) -> Result<Invite> {
        let bytes = decode_text(INVITE_PREFIX, INVITE_LABEL, text)?;
        Invite::from_bytes(&bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// What a certificate states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBody {
    pub school_id: SchoolId,
    pub member: MemberId,
    /// The member's roles when the certificate was issued (at least one).
    pub roles: Vec<Role>,
    /// The device the certificate belongs to (its iroh endpoint id).
    pub device: DeviceKey,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the certificate is refused after it.
    pub expires_at: i64,
}

impl CertificateBody {
    fn check(&self) -> Result<()> {
        check_str(CERT_LABEL, "学校编号", self.school_id.as_str(), true)?;
        check_str(CERT_LABEL, "成员编号", self.member.as_str(), true)?;
        if self.roles.is_empty() || self.roles.len() > Role::ALL.len() {
            return Err(Error::invalid(CERT_LABEL, "角色数量不对"));
        }
        if self.expires_at <= self.issued_at {
            return Err(Error::invalid(CERT_LABEL, "有效期结束早于签发时间"));
        }
        Ok(())
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(128);
        w.push(VERSION);
        put_str(&mut w, self.school_id.as_str());
        put_str(&mut w, self.member.as_str());
        w.push(self.roles.len() as u8);
        for r in &self.roles {
            w.push(role_code(*r));
        }
        w.extend_from_slice(&self.device.0);
        w.extend_from_slice(&self.issued_at.to_be_bytes());
        w.extend_from_slice(&self.expires_at.to_be_bytes());
        w
    }
}

/// A membership certificate: a [`CertificateBody`] signed by the school key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    body: CertificateBody,
    signature: [u8; 64],
}

impl Certificate {
    /// What the certificate states (not yet verified: see [`Certificate::verify`]).
    pub fn body(&self) -> &CertificateBody {
        &self.body
    }

    /// Checks, in this order: the school, the device, the validity window at `now`, and the
    /// school key's signature. Any failure is a refusal.
    pub fn verify(
        &self,
        school: &SchoolId,
        key: &SchoolPublicKey,
        device: &DeviceKey,
        now: i64,
    ) -> Result<()> {
        let b = &self.body;
        if b.school_id != *school {
            return Err(Error::NotPermitted("成员证书属于另一所学校".into()));
        }
        if b.device != *device {
            return Err(Error::NotPermitted("成员证书不属于这台设备".into()));
        }
        if now < b.issued_at.saturating_sub(CLOCK_SKEW) {
            return Err(Error::NotPermitted(
                "成员证书的签发时间在未来，请检查设备时间".into(),
            ));
        }
        if now > b.expires_at {
            return Err(Error::NotPermitted(
                "成员证书已过期，请让管理员重新邀请这台设备".into(),
            ));
        }
        let vk = VerifyingKey::from_bytes(key.as_bytes())
            .map_err(|_| Error::invalid("学校公钥", "不是有效的公钥"))?;
        let sig = Signature::from_bytes(&self.signature);
        vk.verify(&signed_message(&b.to_bytes()), &sig)
            .map_err(|_| Error::NotPermitted("成员证书的签名无效，可能被篡改".into()))
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = self.body.to_bytes();
        w.extend_from_slice(&self.signature);
        w
    }

    /// Decodes the binary form and checks its fields (not the signature: see
    /// [`Certificate::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Certificate> {
        let mut r = Reader::new(bytes, CERT_LABEL);
        r.version()?;
        let school_id = SchoolId(r.str(true)?);
        let member = MemberId(r.str(true)?);
        let n = r.u8()? as usize;
        if n == 0 || n > Role::ALL.len() {
            return Err(r.bad("角色数量不对"));
        }
        let mut roles = Vec::with_capacity(n);
        for _ in 0..n {
            roles.push(role_from_code(r.u8()?)?);
        }
        let device = DeviceKey(r.array::<32>()?);
        let issued_at = r.i64()?;
        let expires_at = r.i64()?;
        let signature = r.array::<64>()?;
        r.end()?;
        let body = CertificateBody {
            school_id,
            member,
            roles,
            device,
            issued_at,
            expires_at,
        };
        body.check()?;
        Ok(Certificate { body, signature })
    }

    /// The text form, `shouwangc1…`.
    pub fn encode(&self) -> String {
        encode_text(CERTIFICATE_PREFIX, &self.to_bytes())
    }

    /// Decodes the text form.
    pub fn decode(text: &str) -> Result<Certificate> {
        let bytes = decode_text(CERTIFICATE_PREFIX, CERT_LABEL, text)?;
        Certificate::from_bytes(&bytes)
    }
}

/// How far in the future an issue time may be before a certificate is refused (device clocks
/// are often wrong by minutes).
const CLOCK_SKEW: i64 = 10 * 60;

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CERT_DOMAIN.len() + body.len());
    m.extend_from_slice(CERT_DOMAIN);
    m.extend_from_slice(body);
    m
}

// ---------------------------------------------------------------------------------------------
// Roles on the wire
// ---------------------------------------------------------------------------------------------

/// The wire code of a role. Fixed forever: never renumber.
pub fn role_code(role: Role) -> u8 {
    match role {
        Role::Leadership => 1,
        Role::Archivist => 2,
        Role::HeadTeacher => 3,
        Role::SubjectTeacher => 4,
        Role::PairingTeacher => 5,
        Role::LoveMother => 6,
        Role::ProxyParent => 7,
        Role::Counsellor => 8,
    }
}

/// The role of a wire code.
pub fn role_from_code(code: u8) -> Result<Role> {
    Role::ALL
        .into_iter()
        .find(|r| role_code(*r) == code)
        .ok_or_else(|| Error::invalid("角色", "无法识别的角色，请升级守望"))
}

// ---------------------------------------------------------------------------------------------
// Text envelope
// ---------------------------------------------------------------------------------------------

fn checksum(prefix: &str, payload: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update(payload);
    let d = h.finalize();
    let mut c = [0u8; CHECK_LEN];
    c.copy_from_slice(&d[..CHECK_LEN]);
    c
}

fn encode_text(prefix: &str, payload: &[u8]) -> String {
    let mut data = payload.to_vec();
    data.extend_from_slice(&checksum(prefix, payload));
    let body = data_encoding::BASE32_NOPAD
        .encode(&data)
        .to_ascii_lowercase();
    format!("{prefix}{body}")
}

fn decode_text(prefix: &str, label: &str, text: &str) -> Result<Vec<u8>> {
    // People copy tickets out of chat apps: ignore whitespace and line breaks anywhere.
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(Error::Missing(label.to_owned()));
    }
    if compact.len() > MAX_TICKET {
        return Err(Error::invalid(label, "太长，不是守望的邀请码或证书"));
    }
    let upper = compact.to_ascii_uppercase();
    let prefix_upper = prefix.to_ascii_uppercase();
    let Some(body) = upper.strip_prefix(&prefix_upper) else {
        return Err(Error::invalid(
            label,
            format!("应以 {prefix} 开头，请检查是否复制完整"),
        ));
    };
    let data = data_encoding::BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| Error::invalid(label, "含有无效字符或长度不对，请检查是否复制完整"))?;
    if data.len() <= CHECK_LEN {
        return Err(Error::invalid(label, "内容不完整"));
    }
    let (payload, check) = data.split_at(data.len() - CHECK_LEN);
    if checksum(prefix, payload) != check {
        return Err(Error::invalid(label, "校验不通过，可能抄错或被改动"));
    }
    Ok(payload.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Binary helpers
// ---------------------------------------------------------------------------------------------

fn check_str(label: &str, field: &str, s: &str, required: bool) -> Result<()> {
    if required && s.is_empty() {
        return Err(Error::invalid(label, format!("缺少{field}")));
    }
    if s.len() > MAX_STR {
        return Err(Error::invalid(label, format!("{field}太长")));
    }
    Ok(())
}

fn check_relay_url(url: &str) -> Result<()> {
    let ok_scheme = url.starts_with("http://") || url.starts_with("https://");
    let ok_chars = url.chars().all(|c| c.is_ascii_graphic());
    if !ok_scheme || !ok_chars || url.len() > MAX_STR {
        return Err(Error::invalid(
            "中继地址",
            "应为 http:// 或 https:// 开头的网址",
        ));
    }
    Ok(())
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    // Callers check the length first.
    let bytes = &s.as_bytes()[..s.len().min(MAX_STR)];
    w.push(bytes.len() as u8);
    w.extend_from_slice(bytes);
}

fn put_addr(w: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            w.push(4);
            w.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            w.push(6);
            w.extend_from_slice(&ip.octets());
        }
    }
    w.extend_from_slice(&a.port().to_be_bytes());
}

/// A bounded reader: every read checks the remaining length first.
struct Reader<'a> {
    buf: &'a [u8],
    label: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], label: &'static str) -> Self {
        Reader { buf, label }
    }

    fn bad(&self, reason: &str) -> Error {
        Error::invalid(self.label, reason)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(self.bad("内容不完整"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array::<8>()?))
    }

    fn version(&mut self) -> Result<()> {
        match self.u8()? {
            VERSION => Ok(()),
            v if v > VERSION => Err(self.bad("来自更新版本的守望，请先升级")),
            _ => Err(self.bad("版本无效")),
        }
    }

    fn str(&mut self, required: bool) -> Result<String> {
        let n = self.u8()? as usize;
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| self.bad("文字编码无效"))?;
        if required && s.is_empty() {
            return Err(self.bad("缺少必要的内容"));
        }
        if s.chars().any(char::is_control) {
            return Err(self.bad("含有控制字符"));
        }
        Ok(s.to_owned())
    }

    fn addr(&mut self) -> Result<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            _ => return Err(self.bad("服务器地址无效")),
        };
        let port = u16::from_be_bytes(self.array::<2>()?);
        if port == 0 {
            return Err(self.bad("服务器端口无效"));
        }
        Ok(SocketAddr::new(ip, port))
    }

    fn end(&self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.bad("末尾有多余内容"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn invite() -> Invite {
        Invite {
            school_id: SchoolId("5f3a9c0d1e2b4a67".into()),
            school_name: "郭庄小学".into(),
            school_key: SchoolKey::generate().public(),
            hub: DeviceKey([7; 32]),
            hub_addrs: vec![
                "203.0.113.5:3341".parse().unwrap(),
                "[2001:db8::1]:3341".parse().unwrap(),
            ],
            relay_url: Some("http://relay.example.org:3340".into()),
            role: Role::LoveMother,
            member: MemberId("m0a1b2c3d4e".into()),
            secret: InviteSecret::random(),
            expires_at: NOW + 7 * 86_400,
        }
    }

    fn body(device: DeviceKey) -> CertificateBody {
        CertificateBody {
            school_id: SchoolId("5f3a9c0d1e2b4a67".into()),
            member: MemberId("m0a1b2c3d4e".into()),
            roles: vec![Role::HeadTeacher, Role::PairingTeacher],
            device,
            issued_at: NOW,
            expires_at: NOW + 365 * 86_400,
        }
    }

    #[test]
    fn invite_round_trips_through_text() {
        let inv = invite();
        let text = inv.encode().unwrap();
        assert!(text.starts_with(INVITE_PREFIX));
        assert!(text.len() < 400, "ticket is {} characters", text.len());
        assert_eq!(Invite::decode(&text).unwrap(), inv);
        // Upper case (as in the QR code), and broken across lines by a chat app.
        let messy = format!("  {}\n{} ", &text[..40].to_uppercase(), &text[40..]);
        assert_eq!(Invite::decode(&messy).unwrap(), inv);
        // No relay, no direct addresses.
        let bare = Invite {
            hub_addrs: vec![],
            relay_url: None,
            ..inv
        };
        assert_eq!(Invite::decode(&bare.encode().unwrap()).unwrap(), bare);
    }

    #[test]
    fn altered_or_cut_invites_are_refused_in_chinese() {
        let text = invite().encode().unwrap();
        // Every single-character change is caught (checksum or alphabet).
        for i in INVITE_PREFIX.len()..text.len() {
            let mut chars: Vec<char> = text.chars().collect();
            chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
            let altered: String = chars.into_iter().collect();
            let err = Invite::decode(&altered).unwrap_err().to_string();
            assert!(err.contains("邀请码"), "{err}");
        }
        // Every truncation is refused without a panic.
        for n in 0..text.len() {
            assert!(Invite::decode(&text[..n]).is_err());
        }
        let err = Invite::decode("shouwangc1abc").unwrap_err().to_string();
        assert!(err.contains("shouwang1"), "{err}");
        assert!(Invite::decode(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn a_valid_checksum_does_not_make_bad_fields_valid() {
        let inv = invite();
        let bytes = inv.to_bytes().unwrap();
        // A newer version byte.
        let mut newer = bytes.clone();
        newer[0] = 2;
        let err = Invite::decode(&encode_text(INVITE_PREFIX, &newer)).unwrap_err();
        assert!(err.to_string().contains("升级"), "{err}");
        // Trailing garbage.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Invite::decode(&encode_text(INVITE_PREFIX, &longer)).is_err());
        // An unknown role code.
        let role_at = bytes.len() - 8 - 16 - 1 - inv.member.as_str().len() - 1;
        let mut role = bytes.clone();
        role[role_at] = 99;
        let err = Invite::decode(&encode_text(INVITE_PREFIX, &role)).unwrap_err();
        assert!(err.to_string().contains("角色"), "{err}");
        // Every truncation of the binary form.
        for n in 0..bytes.len() {
            assert!(Invite::from_bytes(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn invites_expire() {
        let inv = invite();
        assert!(inv.check_valid(NOW).is_ok());
        assert!(inv.check_valid(inv.expires_at).is_ok());
        let err = inv.check_valid(inv.expires_at + 1).unwrap_err().to_string();
        assert!(err.contains("过期"), "{err}");
    }

    #[test]
    fn bad_relay_urls_are_refused() {
        for url in ["ftp://x", "relay.example.org", "http://a b", ""] {
            let inv = Invite {
                relay_url: Some(url.into()),
                ..invite()
            };
            assert!(inv.encode().is_err(), "{url}");
        }
    }

    #[test]
    fn certificates_sign_and_verify() {
        let key = SchoolKey::generate();
        let device = DeviceKey([3; 32]);
        let cert = key.issue(body(device)).unwrap();
        let school = SchoolId("5f3a9c0d1e2b4a67".into());
        cert.verify(&school, &key.public(), &device, NOW + 60)
            .unwrap();

        let text = cert.encode();
        assert!(text.starts_with(CERTIFICATE_PREFIX));
        let back = Certificate::decode(&text).unwrap();
        assert_eq!(back, cert);
        back.verify(&school, &key.public(), &device, NOW).unwrap();
        assert_eq!(Certificate::from_bytes(&cert.to_bytes()).unwrap(), cert);

        // The school key survives a round trip through its secret bytes.
        let again = SchoolKey::from_secret_bytes(&key.secret_bytes());
        assert_eq!(again.public(), key.public());
        assert!(!format!("{key:?}").contains(&hex::encode(key.secret_bytes())));
    }

    #[test]
    fn certificates_are_refused_when_anything_is_wrong() {
        let key = SchoolKey::generate();
        let device = DeviceKey([3; 32]);
        let cert = key.issue(body(device)).unwrap();
        let school = SchoolId("5f3a9c0d1e2b4a67".into());
        let msg = |r: Result<()>| r.unwrap_err().to_string();

        // Another school's key, another school, another device.
        let other = SchoolKey::generate().public();
        assert!(msg(cert.verify(&school, &other, &device, NOW)).contains("签名"));
        let elsewhere = SchoolId("0000000000000000".into());
        assert!(msg(cert.verify(&elsewhere, &key.public(), &device, NOW)).contains("另一所学校"));
        let phone = DeviceKey([4; 32]);
        assert!(msg(cert.verify(&school, &key.public(), &phone, NOW)).contains("这台设备"));

        // Expired, and issued in the future beyond the allowed skew.
        let late = cert.body().expires_at + 1;
        assert!(msg(cert.verify(&school, &key.public(), &device, late)).contains("过期"));
        let early = NOW - CLOCK_SKEW - 1;
        assert!(msg(cert.verify(&school, &key.public(), &device, early)).contains("未来"));

        // Tampering with any byte of the body or the signature breaks the signature (or the
        // decoding), even with a recomputed checksum.
        let bytes = cert.to_bytes();
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let Ok(tampered) = Certificate::decode(&encode_text(CERTIFICATE_PREFIX, &t)) else {
                continue;
            };
            let b = tampered.body();
            let r = tampered.verify(&b.school_id, &key.public(), &b.device, NOW);
            assert!(r.is_err(), "byte {i} altered but still verified");
        }
        // Added roles: re-encoded with the old signature.
        let mut more = cert.clone();
        more.body.roles.push(Role::Leadership);
        assert!(more.verify(&school, &key.public(), &device, NOW).is_err());
        for n in 0..bytes.len() {
            assert!(Certificate::from_bytes(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn bodies_that_make_no_sense_are_not_signed() {
        let key = SchoolKey::generate();
        let mut b = body(DeviceKey([1; 32]));
        b.roles.clear();
        assert!(key.issue(b).is_err());
        let mut b = body(DeviceKey([1; 32]));
        b.expires_at = b.issued_at;
        assert!(key.issue(b).is_err());
    }

    #[test]
    fn every_role_has_a_distinct_code() {
        for r in Role::ALL {
            assert_eq!(role_from_code(role_code(r)).unwrap(), r);
        }
        assert!(role_from_code(0).is_err());
    }

    #[test]
    fn secrets_have_stable_digests_and_hide_in_debug() {
        let s = InviteSecret([9; 16]);
        assert_eq!(s.digest(), InviteSecret([9; 16]).digest());
        assert_ne!(s.digest(), InviteSecret::random().digest());
        assert!(!format!("{s:?}").contains('9'));
    }
}
