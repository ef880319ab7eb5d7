//! Sealed bundle files: signed by the device that exports them, encrypted to the devices that
//! may read them.
//!
//! A bundle file travels over 微信 or on a USB stick, so anyone may copy, alter or forge one.
//! The file a user handles is always sealed; the plain [`Bundle`] encoding only travels inside
//! one, or over a connection already authenticated by both ends (the hub's enrollment).
//!
//! # Format
//!
//! ```text
//! file       = age-encryption.org/v1 file of `signed`
//!              to X25519 recipients: the receiving devices' keys (see crate::device_key)
//!              or to an scrypt passphrase: a device that has no key yet (work factor 2^15)
//! signed     = "SWSIGNED" | version:u8 (1) | signer:[u8; 32] | n:u8 (0 or 32)
//!              | new device secret:[u8; n] | len:u32 LE | bundle:[u8; len] | signature:[u8; 64]
//! signature  = ed25519 by `signer` over "shouwang/bundle/v1" | every byte of `signed` before it
//! ```
//!
//! `bundle` is the plain [`Bundle`] encoding. The new device's secret is only in a bundle that
//! sets up a new device (`shouwang device add`), which is always sealed to a passphrase the
//! office gives in person.
//!
//! Opening checks, in order, before anything is merged: that the file is an age file (a plain
//! bundle of an older version is refused), that this device is one of its recipients (or the
//! passphrase is right), age's authentication of every byte, the signature, and then the plain
//! bundle's own checks. Whether the signer is a registered, unrevoked device of the school is
//! for the archive to decide ([`crate::Archive::import_bundle`]).

use std::io::{Read, Write};

use age::secrecy::SecretString;
use rand::Rng;

use super::Bundle;
use crate::device_key::{self, DeviceSecret};
use crate::error::{Error, Result};
use crate::membership::DeviceKey;

const MAGIC: &[u8; 8] = b"SWSIGNED";
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"shouwang/bundle/v1";
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// scrypt work factor of a passphrase-sealed bundle: 2^15 (32 MiB, a fraction of a second on
/// a cheap phone). The passphrase is 16 random digits, so the work factor need not carry the
/// strength a human-chosen one would need.
const PASSPHRASE_LOG_N: u8 = 15;
/// The most scrypt work a file may ask of this device: a forged file cannot make it spend
/// minutes and gigabytes.
const MAX_LOG_N: u8 = 16;
/// Largest sealed file opened.
pub const MAX_FILE: usize = 512 * 1024 * 1024;

/// The passphrase that opens a bundle for a device not set up yet: 16 random digits, shown as
/// four groups (`1234-5678-9012-3456`). Digits are easy to read aloud and to type on a phone.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

impl std::fmt::Display for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<&str> = (0..4).map(|i| &self.0[i * 4..i * 4 + 4]).collect();
        f.write_str(&groups.join("-"))
    }
}

impl Passphrase {
    /// A new random passphrase.
    pub fn generate() -> Passphrase {
        let mut rng = rand::rng();
        Passphrase(
            (0..16)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect(),
        )
    }

    /// Reads a passphrase as a person typed it: the 16 digits, with or without the dashes or
    /// spaces between groups.
    pub fn parse(text: &str) -> Result<Passphrase> {
        let digits: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid(
                "口令",
                "应为 16 位数字（如 1234-5678-9012-3456），请核对管理员给你的口令",
            ));
        }
        Ok(Passphrase(digits))
    }

    fn secret(&self) -> SecretString {
        SecretString::from(self.0.clone())
    }
}

/// Whom a sealed file is for.
#[derive(Debug, Clone, Copy)]
pub enum Lock<'a> {
    /// The registered devices with these keys.
    Devices(&'a [DeviceKey]),
    /// Whoever has the passphrase (a device not set up yet).
    Passphrase(&'a Passphrase),
}

/// How this device opens a sealed file.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// With its own key.
    Device(&'a DeviceSecret),
    /// With the passphrase the office gave (setting up a new device).
    Passphrase(&'a Passphrase),
}

/// An opened, verified file.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub bundle: Bundle,
    /// The key of the device that signed it.
    pub signer: DeviceKey,
    /// The secret key of the new device this file sets up.
    pub new_device: Option<DeviceSecret>,
}

/// True if `bytes` look like a sealed file (an age file); says nothing of who may open it.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC)
}

/// Signs `bundle` as `signer` and encrypts it for `lock`.
pub fn seal(
    bundle: &Bundle,
    signer: &DeviceSecret,
    new_device: Option<&DeviceSecret>,
    lock: Lock<'_>,
) -> Result<Vec<u8>> {
    seal_bytes(&bundle.encode()?, signer, new_device, lock)
}

/// [`seal`] of an encoded bundle.
fn seal_bytes(
    plain: &[u8],
    signer: &DeviceSecret,
    new_device: Option<&DeviceSecret>,
    lock: Lock<'_>,
) -> Result<Vec<u8>> {
    // The domain first, so that the signed message is one slice (`signed` without it is what
    // the file carries): no copy of the whole file to sign it.
    let mut signed = Vec::with_capacity(DOMAIN.len() + plain.len() + 180);
    signed.extend_from_slice(DOMAIN);
    signed.extend_from_slice(MAGIC);
    signed.push(VERSION);
    signed.extend_from_slice(&signer.public().0);
    match new_device {
        Some(d) => {
            signed.push(32);
            signed.extend_from_slice(&d.to_bytes());
        }
        None => signed.push(0),
    }
    let len = u32::try_from(plain.len()).map_err(|_| Error::invalid("导出文件", "太大"))?;
    signed.extend_from_slice(&len.to_le_bytes());
    signed.extend_from_slice(plain);
    let signature = signer.sign(&signed);
    signed.extend_from_slice(&signature);
    let signed = &signed[DOMAIN.len()..];

    let failed = |_| Error::Corrupt("数据文件加密失败".into());
    let encryptor = match lock {
        Lock::Devices(keys) => {
            let recipients = keys
                .iter()
                .map(device_key::recipient)
                .collect::<Result<Vec<_>>>()?;
            if recipients.is_empty() {
                return Err(Error::NotPermitted(
                    "没有可以接收这个文件的已登记设备".into(),
                ));
            }
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(failed)?
        }
        Lock::Passphrase(p) => {
            let mut recipient = age::scrypt::Recipient::new(p.secret());
            recipient.set_work_factor(PASSPHRASE_LOG_N);
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(failed)?
        }
    };
    let mut out = Vec::with_capacity(signed.len() + 400);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(signed)?;
    writer.finish()?;
    Ok(out)
}

/// Decrypts and verifies a sealed file. Every defect refuses the whole file.
pub fn open(bytes: &[u8], unlock: Unlock<'_>) -> Result<Sealed> {
    open_signed_by(bytes, unlock, |_, _| Ok(()))
}

/// [`open`], with `signer` asked whether the key that signed the file may send it once the
/// signature is verified, before the bundle inside is unpacked: a file anyone could seal to
/// this device's public key (it is in the school document) unpacks to up to
/// [`MAX_PAYLOAD`](super::MAX_PAYLOAD) bytes, which only a registered device's file may cost.
/// `signer` also gets the school the bundle's header names (unchecked), so that a file of
/// another school is told apart from a stranger's.
pub fn open_signed_by(
    bytes: &[u8],
    unlock: Unlock<'_>,
    signer: impl FnOnce(&DeviceKey, Option<&str>) -> Result<()>,
) -> Result<Sealed> {
    if !is_sealed(bytes) {
        if bytes.starts_with(b"SWBUNDLE") {
            return Err(Error::NotPermitted(
                "这是旧版守望导出的未加密、未签名的数据文件，已不再接受：请对方升级后重新导出"
                    .into(),
            ));
        }
        return Err(Error::Corrupt("不是守望的数据文件".into()));
    }
    if bytes.len() > MAX_FILE {
        return Err(Error::invalid("数据文件", "太大，无法导入"));
    }
    let tampered = || Error::Corrupt("数据文件已损坏或被改动过，请让对方重新发送".into());
    let decryptor = age::Decryptor::new_buffered(bytes).map_err(|_| tampered())?;
    let reader = match unlock {
        Unlock::Device(secret) => {
            if decryptor.is_scrypt() {
                return Err(Error::NotPermitted(
                    "这个文件是用来登记新设备的，要用“shouwang join --bundle”和管理员给的口令打开"
                        .into(),
                ));
            }
            let identity = secret.age_identity()?;
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::NoMatchingKeys => Error::NotPermitted(
                        "这个数据文件不是发给本机的：请让对方为你（或学校管理员）重新导出".into(),
                    ),
                    _ => tampered(),
                })?
        }
        Unlock::Passphrase(p) => {
            if !decryptor.is_scrypt() {
                return Err(Error::NotPermitted(
                    "这个文件不是用来登记新设备的：请让管理员用“shouwang device add”为你导出"
                        .into(),
                ));
            }
            let mut identity = age::scrypt::Identity::new(p.secret());
            identity.set_max_work_factor(MAX_LOG_N);
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::DecryptionFailed
                    | age::DecryptError::KeyDecryptionFailed
                    | age::DecryptError::NoMatchingKeys => {
                        Error::invalid("口令", "口令不对，请核对管理员当面给你的 16 位数字")
                    }
                    _ => tampered(),
                })?
        }
    };
    // Read after the domain: the message the signature covers is then one slice of it, and
    // a stranger's file is held once, not copied again to check its signature.
    let mut framed = Vec::with_capacity(DOMAIN.len() + bytes.len());
    framed.extend_from_slice(DOMAIN);
    reader
        .take(MAX_FILE as u64)
        .read_to_end(&mut framed)
        .map_err(|_| tampered())?;
    parse_signed(&framed, signer)
}

/// Checks and unpacks `framed`: [`DOMAIN`] and then the decrypted `signed` bytes.
fn parse_signed(
    framed: &[u8],
    check: impl FnOnce(&DeviceKey, Option<&str>) -> Result<()>,
) -> Result<Sealed> {
    let bad = |what: &str| Error::Corrupt(format!("不是有效的守望数据文件（{what}）"));
    let signed = &framed[DOMAIN.len()..];
    if signed.len() < MAGIC.len() + 1 + 32 + 1 + 4 + 64 || &signed[..8] != MAGIC {
        return Err(bad("文件头不对"));
    }
    if signed[8] != VERSION {
        return Err(bad("版本不支持，请升级守望"));
    }
    let (message, signature) = framed.split_at(framed.len() - 64);
    let body = &message[DOMAIN.len()..];
    let signer = DeviceKey(body[9..41].try_into().map_err(|_| bad("签名者"))?);
    let signature: [u8; 64] = signature.try_into().map_err(|_| bad("签名"))?;
    device_key::verify(&signer, message, &signature)?;
    let mut rest = &body[41..];
    let n = usize::from(rest[0]);
    rest = &rest[1..];
    let new_device = match n {
        0 => None,
        32 if rest.len() >= 32 => {
            let seed: [u8; 32] = rest[..32].try_into().map_err(|_| bad("新设备密钥"))?;
            rest = &rest[32..];
            Some(DeviceSecret::from_bytes(&seed))
        }
        _ => return Err(bad("新设备密钥")),
    };
    if rest.len() < 4 {
        return Err(bad("内容被截断"));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    rest = &rest[4..];
    if rest.len() != len {
        return Err(bad("长度不对"));
    }
    check(&signer, Bundle::school_of(rest))?;
    Ok(Sealed {
        bundle: Bundle::decode(rest)?,
        signer,
        new_device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Entry;
    use crate::doc::DocId;
    use crate::ids::SchoolId;

    fn sample() -> Bundle {
        Bundle {
            school: SchoolId::from("s1"),
            device: None,
            entries: vec![Entry {
                doc: DocId::School,
                heads: vec![],
                data: b"secret child record".to_vec(),
            }],
            held: vec![],
        }
    }

    #[test]
    fn a_device_opens_what_was_sealed_to_it_and_nobody_else_does() {
        let (office, phone, stranger) = (
            DeviceSecret::generate(),
            DeviceSecret::generate(),
            DeviceSecret::generate(),
        );
        let file = seal(
            &sample(),
            &office,
            None,
            Lock::Devices(&[phone.public(), office.public()]),
        )
        .unwrap();
        assert!(
            !file
                .windows(b"secret child".len())
                .any(|w| w == b"secret child")
        );
        let opened = open(&file, Unlock::Device(&phone)).unwrap();
        assert_eq!(opened.bundle, sample());
        assert_eq!(opened.signer, office.public());
        assert!(opened.new_device.is_none());
        assert!(open(&file, Unlock::Device(&office)).is_ok());
        let err = open(&file, Unlock::Device(&stranger)).unwrap_err();
        assert!(err.to_string().contains("不是发给本机的"), "{err}");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let phone = DeviceSecret::generate();
        let file = seal(
            &sample(),
            &DeviceSecret::generate(),
            None,
            Lock::Devices(&[phone.public()]),
        )
        .unwrap();
        for i in (0..file.len()).step_by(3) {
            let mut f = file.clone();
            f[i] ^= 0x01;
            assert!(open(&f, Unlock::Device(&phone)).is_err(), "flip at {i}");
        }
        for cut in (0..file.len()).step_by(7) {
            assert!(
                open(&file[..cut], Unlock::Device(&phone)).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_passphrase_file_carries_the_new_device_key_and_needs_the_right_passphrase() {
        let office = DeviceSecret::generate();
        let new = DeviceSecret::generate();
        let pass = Passphrase::generate();
        let file = seal(&sample(), &office, Some(&new), Lock::Passphrase(&pass)).unwrap();
        let typed = Passphrase::parse(&format!(" {pass} ")).unwrap();
        let opened = open(&file, Unlock::Passphrase(&typed)).unwrap();
        assert_eq!(opened.new_device.map(|d| d.public()), Some(new.public()));
        let wrong = Passphrase::parse("0000-0000-0000-0000").unwrap();
        let err = open(&file, Unlock::Passphrase(&wrong)).unwrap_err();
        assert!(err.to_string().contains("口令不对"), "{err}");
        assert!(open(&file, Unlock::Device(&new)).is_err());
        assert!(Passphrase::parse("1234").is_err());
    }

    #[test]
    fn a_plain_bundle_is_refused_as_unsigned() {
        let plain = sample().encode().unwrap();
        let err = open(&plain, Unlock::Device(&DeviceSecret::generate())).unwrap_err();
        assert!(err.to_string().contains("未签名"), "{err}");
    }

    /// A file from a key the receiver does not accept is refused before its bundle is
    /// unpacked: here one that unpacks to 300 MiB (past the bound, and declaring no size), which
    /// is otherwise decompressed up to the bound first.
    #[test]
    fn a_stranger_s_file_is_refused_before_it_is_unpacked() {
        use std::io::Write as _;
        let (phone, stranger) = (DeviceSecret::generate(), DeviceSecret::generate());
        let mut bomb = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        bomb.include_contentsize(false).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            bomb.write_all(&zeros).unwrap();
        }
        let bomb = bomb.finish().unwrap();
        let plain = crate::bundle::with_payload(&sample(), &bomb);
        let file = seal_bytes(&plain, &stranger, None, Lock::Devices(&[phone.public()])).unwrap();
        // Unchecked, it is unpacked (and refused for its size).
        let err = open(&file, Unlock::Device(&phone)).unwrap_err();
        assert!(err.to_string().contains("解压失败"), "{err}");
        let err = open_signed_by(&file, Unlock::Device(&phone), |k, school| {
            assert_eq!(*k, stranger.public());
            assert_eq!(
                school,
                Some("s1"),
                "the school named by the header, for WrongSchool"
            );
            Err(Error::NotPermitted("设备不在本机所知的学校登记里".into()))
        })
        .unwrap_err();
        assert!(err.to_string().contains("不在本机所知"), "{err}");
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        // Re-sign the body with a second key but keep the first key as the claimed signer.
        let (a, b, phone) = (
            DeviceSecret::generate(),
            DeviceSecret::generate(),
            DeviceSecret::generate(),
        );
        let file = seal(&sample(), &a, None, Lock::Devices(&[phone.public()])).unwrap();
        let Sealed { .. } = open(&file, Unlock::Device(&phone)).unwrap();
        let plain = sample().encode().unwrap();
        let mut signed = MAGIC.to_vec();
        signed.push(VERSION);
        signed.extend_from_slice(&a.public().0);
        signed.push(0);
        signed.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        signed.extend_from_slice(&plain);
        let forged = b.sign(&[DOMAIN, &signed].concat());
        signed.extend_from_slice(&forged);
        let err = parse_signed(&[DOMAIN, &signed].concat(), |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("签名不对"), "{err}");
    }
}
