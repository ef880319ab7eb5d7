//! A device's key pair: it signs the bundles the device exports and opens the bundles sent to
//! it.
//!
//! Every device has one ed25519 key pair. Its public half is registered with the device in the
//! school document (see [`crate::school::Device::key`]); the device id is the first 16 bytes of
//! it ([`DeviceId::from_key`]), which is also the automerge actor of everything the device
//! writes (or starts it: [`crate::ids::Epoch`], a re-based document's generation).
//!
//! - A device that enrolls over the network uses its iroh endpoint key; the hub registers it.
//! - A device set up from a bundle (`shouwang device add`) gets a key generated at the office,
//!   inside the passphrase-sealed bundle that sets it up.
//! - The first device of a school (`init`) generates its own.
//!
//! Bundles are encrypted with [age](https://age-encryption.org/v1) to the receiving devices'
//! X25519 keys, which are the same keys in Montgomery form (`VerifyingKey::to_montgomery` and
//! `SigningKey::to_scalar_bytes`, the conversion libsodium and age's own `ssh-ed25519`
//! recipients use). One key per device means the hub can register, at enrollment, everything
//! anyone needs to encrypt to that device and check its signature, with nothing more on the
//! wire. Using one key pair for Ed25519 signatures and an X25519 KEM is analysed in "On using
//! the same key pair for Ed25519 and an X25519 based KEM" (Thormarker, 2021).

use std::fmt;
use std::str::FromStr;

use bech32::{ToBase32, Variant};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;

use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::membership::DeviceKey;

/// A device's secret key. Its `Debug` shows only the public half.
#[derive(Clone)]
pub struct DeviceSecret(SigningKey);

impl fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceSecret({})", self.public().to_hex())
    }
}

impl DeviceSecret {
    /// A new random key.
    pub fn generate() -> DeviceSecret {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        DeviceSecret::from_bytes(&seed)
    }

    /// The key from its 32-byte seed (an iroh secret key's bytes are one).
    pub fn from_bytes(seed: &[u8; 32]) -> DeviceSecret {
        DeviceSecret(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key from the hex form kept in a store's `meta`.
    pub fn from_hex(text: &str) -> Result<DeviceSecret> {
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(|b| DeviceSecret::from_bytes(&b))
            .ok_or_else(|| Error::Corrupt("本机的设备密钥已损坏".into()))
    }

    /// The hex form kept in a store's `meta`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public half, as registered in the school document.
    pub fn public(&self) -> DeviceKey {
        DeviceKey(self.0.verifying_key().to_bytes())
    }

    /// The id of the device holding this key.
    pub fn device_id(&self) -> DeviceId {
        DeviceId::from_key(&self.public().0)
    }

    /// Signs `message` (with a domain prefix chosen by the caller).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The age identity that opens files encrypted to [`recipient`] of this key.
    pub(crate) fn age_identity(&self) -> Result<age::x25519::Identity> {
        let scalar = self.0.to_scalar_bytes();
        let text = bech32::encode("age-secret-key-", scalar.to_base32(), Variant::Bech32)
            .map_err(|_| Error::Corrupt("设备密钥无法转换".into()))?;
        age::x25519::Identity::from_str(&text.to_uppercase())
            .map_err(|_| Error::Corrupt("设备密钥无法转换".into()))
    }
}

/// Checks `signature` over `message` by the device whose public key is `key`.
pub fn verify(key: &DeviceKey, message: &[u8], signature: &[u8; 64]) -> Result<()> {
    let bad =
        || Error::Corrupt("数据文件的签名不对：文件被改动过，或不是它自称的设备导出的".into());
    let key = VerifyingKey::from_bytes(&key.0).map_err(|_| bad())?;
    key.verify(message, &Signature::from_bytes(signature))
        .map_err(|_| bad())
}

/// The age recipient that encrypts to the device whose public key is `key`.
pub(crate) fn recipient(key: &DeviceKey) -> Result<age::x25519::Recipient> {
    let bad = || Error::Corrupt("登记的设备公钥无效".into());
    let point = VerifyingKey::from_bytes(&key.0)
        .map_err(|_| bad())?
        .to_montgomery();
    let text =
        bech32::encode("age", point.as_bytes().to_base32(), Variant::Bech32).map_err(|_| bad())?;
    age::x25519::Recipient::from_str(&text).map_err(|_| bad())
}

/// Parses a registered public key (64 hex digits).
pub fn parse_public(text: &str) -> Option<DeviceKey> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(DeviceKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_identity_matches_the_recipient_of_the_public_key() {
        let secret = DeviceSecret::generate();
        let from_secret = secret.age_identity().unwrap().to_public().to_string();
        let from_public = recipient(&secret.public()).unwrap().to_string();
        assert_eq!(from_secret, from_public);
        assert!(from_public.starts_with("age1"));
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let a = DeviceSecret::generate();
        let b = DeviceSecret::generate();
        let sig = a.sign(b"bundle");
        assert!(verify(&a.public(), b"bundle", &sig).is_ok());
        assert!(verify(&a.public(), b"bundlf", &sig).is_err());
        assert!(verify(&b.public(), b"bundle", &sig).is_err());
    }

    #[test]
    fn hex_roundtrips_and_the_device_id_is_the_key_prefix() {
        let a = DeviceSecret::generate();
        let b = DeviceSecret::from_hex(&a.to_hex()).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(a.device_id().as_str(), &a.public().to_hex()[..32]);
        assert!(DeviceSecret::from_hex("zz").is_err());
    }
}
