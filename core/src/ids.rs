//! Identifiers.
//!
//! Every id is a short lower-case string, safe in a file name and a document key:
//! - [`RecordId`] is time-ordered: 12 hex digits of the device's clock in milliseconds, then 8
//!   random hex digits, so ids sort roughly by when they were written and never collide across
//!   devices. Ordering *for people* never relies on it (see [`crate::records`]).
//! - A [`ChildId`] is derived from the school and the child's 学籍号 when there is one, so two
//!   devices importing the same roster produce the same document instead of a duplicate child.
//!   The derivation is keyed: HMAC-SHA256 with the [`SchoolSecret`] over the school id and the
//!   trimmed 学籍号, truncated to 8 bytes (16 hex digits). A 学籍号 is usually "G" + 身份证号,
//!   so an unkeyed hash would let anyone who holds a child id test ID numbers against it; the
//!   secret is held only by administrators' devices and the hub (the admin-only document
//!   `school/keys`, see [`crate::archive::Archive::school_secret`]), so a teacher or volunteer
//!   who holds a child's id cannot. Children of a school created before ids were keyed keep
//!   their unkeyed ids: deriving an id always looks for a child whose file holds the 学籍号
//!   first (`Archive::import_roster_with`). A device without the secret (a member who is not
//!   an administrator) gives a new child a random id.
//! - [`DeviceId`] is 16 random bytes; it is also the automerge actor of everything the device
//!   writes.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A school.
    SchoolId
);
string_id!(
    /// A child's care file.
    ChildId
);
string_id!(
    /// A member of the school (teacher, volunteer, …).
    MemberId
);
string_id!(
    /// A class (班级).
    ClassId
);
string_id!(
    /// A device, and its automerge actor.
    DeviceId
);
string_id!(
    /// A care record.
    RecordId
);
string_id!(
    /// A pairing (结对帮扶).
    PairingId
);

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn digest_hex(parts: &[&str], bytes: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..bytes])
}

impl SchoolId {
    /// A new random school id.
    pub fn random() -> Self {
        SchoolId(random_hex(8))
    }
}

impl DeviceId {
    /// A new random device id.
    pub fn random() -> Self {
        DeviceId(random_hex(16))
    }

    /// The device id of a device whose network key (its iroh endpoint id) is `key`: the first
    /// 16 bytes, so the hub can register the device it enrolls before the device writes.
    pub fn from_key(key: &[u8; 32]) -> Self {
        DeviceId(hex::encode(&key[..16]))
    }

    /// The automerge actor for this device.
    pub fn actor(&self) -> automerge::ActorId {
        match hex::decode(&self.0) {
            Ok(bytes) => automerge::ActorId::from(bytes),
            Err(_) => automerge::ActorId::from(self.0.as_bytes()),
        }
    }
}

/// How many bytes a device id has (and so the device's part of every actor it writes under).
pub const DEVICE_ID_BYTES: usize = 16;

/// A restore epoch: the tag a device appends to its actor once its own copy was restored from
/// a backup (the hub, `shouwang-relay restore`).
///
/// automerge numbers each actor's changes one after another, and a copy restored from a
/// backup has lost the last numbers it used: changes it made after the backup live on in
/// other devices' copies. Writing under the same actor again would give a new change a number
/// those copies already hold for another, and they could never merge the document again. So
/// a restored copy writes under its device id followed by a new epoch, and every later write
/// of that device (in a re-based document, the generation's tag after the epoch) is a new
/// actor's. The trust rules attribute the actor to the device ([`crate::trust::device_of_actor`]):
/// an epoch is recognised by its form, `ee` and four random bytes, so it needs no record in
/// the school document (which the restored copy could only write under an actor the others
/// already know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch(pub String);

impl Epoch {
    /// The first byte of every epoch, in hex.
    const MARK: &'static str = "ee";
    /// Hex digits in an epoch: the mark and four random bytes.
    pub const HEX_LEN: usize = 10;

    /// A new random epoch.
    pub fn random() -> Epoch {
        Epoch(format!("{}{}", Self::MARK, random_hex(4)))
    }

    /// Whether `tag` (hex) has an epoch's form.
    pub fn is_epoch(tag: &str) -> bool {
        tag.len() == Self::HEX_LEN
            && tag.starts_with(Self::MARK)
            && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// `tag` (what follows a device id in an actor, hex) without the epoch it starts with, if
    /// it is an epoch alone or one followed by a re-based document's generation tag (16 hex
    /// digits); otherwise `tag` as it is. Generation tags are 16 digits and epochs 10, so the
    /// two never read as each other.
    pub fn strip(tag: &str) -> &str {
        match tag.get(..Self::HEX_LEN) {
            Some(e) if Self::is_epoch(e) && matches!(tag.len() - Self::HEX_LEN, 0 | 16) => {
                &tag[Self::HEX_LEN..]
            }
            _ => tag,
        }
    }

    /// `device`'s actor in this epoch.
    pub fn actor_of(epoch: Option<&Epoch>, device: &DeviceId) -> automerge::ActorId {
        let mut bytes = device.actor().to_bytes().to_vec();
        if let Some(e) = epoch {
            bytes.extend(hex::decode(&e.0).unwrap_or_default());
        }
        automerge::ActorId::from(bytes)
    }

    /// The epoch `actor` (a store's own actor: a device id, maybe followed by an epoch) is in.
    pub fn of_actor(actor: &automerge::ActorId) -> Option<Epoch> {
        let bytes = actor.to_bytes();
        let tag = hex::encode(bytes.get(DEVICE_ID_BYTES..)?);
        Self::is_epoch(&tag).then_some(Epoch(tag))
    }
}

/// The device part of `actor`, in hex: the device id every actor of a device starts with
/// (its own, an epoch's, a re-based document's generation's).
pub fn device_hex(actor: &automerge::ActorId) -> String {
    let bytes = actor.to_bytes();
    hex::encode(&bytes[..bytes.len().min(DEVICE_ID_BYTES)])
}

/// The school secret that keys child ids: 32 random bytes, created with the school, held only
/// by administrators' devices and the hub. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SchoolSecret([u8; 32]);

impl SchoolSecret {
    /// A new random secret (the operating system's generator, through `rand`).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SchoolSecret(bytes)
    }

    /// A secret as stored; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(SchoolSecret)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SchoolSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchoolSecret(…)")
    }
}

impl ChildId {
    /// The id of a child known to the school registry: the same on every device that holds
    /// the school secret, and not computable without it.
    pub fn for_student(secret: &SchoolSecret, school: &SchoolId, student_no: &str) -> Self {
        type HmacSha256 = Hmac<Sha256>;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        for part in ["child", school.0.as_str(), student_no.trim()] {
            mac.update(part.as_bytes());
            mac.update(&[0u8]);
        }
        ChildId(hex::encode(&mac.finalize().into_bytes()[..8]))
    }

    /// The id a child with this 学籍号 had in a school made before ids were keyed: the first 8
    /// bytes of SHA-256 over the same parts, no secret. Such children keep it; a roster import
    /// checks it against the school's erasures too, since once an old child's file is erased
    /// nothing else links its 学籍号 to that id.
    pub fn before_keyed(school: &SchoolId, student_no: &str) -> Self {
        let mut h = Sha256::new();
        for part in ["child", school.0.as_str(), student_no.trim()] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        ChildId(hex::encode(&h.finalize()[..8]))
    }

    /// A new random id for a child with no 学籍号 yet.
    pub fn random() -> Self {
        ChildId(random_hex(8))
    }
}

impl MemberId {
    /// A new random member id.
    pub fn random() -> Self {
        MemberId(format!("m{}", random_hex(5)))
    }
}

impl ClassId {
    /// The id of a class by its name: the same class created on two devices is one class.
    pub fn for_name(school: &SchoolId, name: &str) -> Self {
        ClassId(format!(
            "k{}",
            digest_hex(&["class", &school.0, name.trim()], 5)
        ))
    }
}

impl PairingId {
    /// The id of a pairing: one carer, one child, one role; pairing twice is idempotent.
    pub fn for_pair(carer: &MemberId, child: &ChildId, role: &str) -> Self {
        PairingId(format!("p{}", digest_hex(&[&carer.0, &child.0, role], 6)))
    }
}

impl RecordId {
    /// A new time-ordered id from the device clock (milliseconds since the epoch).
    pub fn new(now_ms: i64) -> Self {
        let ms = now_ms.clamp(0, 0xffff_ffff_ffff);
        RecordId(format!("{ms:012x}{}", random_hex(4)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_sort_by_time_and_differ() {
        let a = RecordId::new(1_700_000_000_000);
        let b = RecordId::new(1_700_000_000_001);
        let c = RecordId::new(1_700_000_000_001);
        assert!(a < b);
        assert_ne!(b, c);
        assert_eq!(a.0.len(), 20);
    }

    #[test]
    fn child_id_is_stable_per_secret_school_and_student_number() {
        let s = SchoolId::from("s1");
        let k = SchoolSecret::generate();
        let id = ChildId::for_student(&k, &s, "G3403212015");
        assert_eq!(id, ChildId::for_student(&k, &s, " G3403212015 "));
        assert_eq!(id.0.len(), 16);
        assert_ne!(
            id,
            ChildId::for_student(&k, &SchoolId::from("s2"), "G3403212015")
        );
        assert_ne!(
            id,
            ChildId::for_student(&SchoolSecret::generate(), &s, "G3403212015")
        );
    }

    #[test]
    fn child_id_is_not_the_unkeyed_hash_and_hides_the_secret() {
        let s = SchoolId::from("s1");
        let k = SchoolSecret::from_bytes(&[7u8; 32]).unwrap();
        // HMAC-SHA256 (RFC 2104), as an independent reference would compute it.
        assert_eq!(
            ChildId::for_student(&k, &s, "G3403212015").0,
            "68ab4e67b8218cba"
        );
        assert_ne!(
            ChildId::for_student(&k, &s, "G3403212015").0,
            digest_hex(&["child", "s1", "G3403212015"], 8)
        );
        assert_eq!(format!("{k:?}"), "SchoolSecret(…)");
        assert!(SchoolSecret::from_bytes(&[7u8; 31]).is_none());
    }

    #[test]
    fn device_actor_is_its_bytes() {
        let d = DeviceId::random();
        assert_eq!(d.actor().to_hex_string(), d.0);
    }

    #[test]
    fn an_epoch_is_told_apart_from_a_generation_tag() {
        let e = Epoch::random();
        assert!(Epoch::is_epoch(&e.0), "{e:?}");
        let generation = "ee0011223344556677";
        assert_eq!(generation.len(), 18);
        let generation = &generation[..16];
        // A generation tag that happens to start with the mark stays a generation tag.
        assert_eq!(Epoch::strip(generation), generation);
        assert_eq!(Epoch::strip(&e.0), "");
        assert_eq!(Epoch::strip(&format!("{}{generation}", e.0)), generation);
        // Anything else after an epoch is not taken off: the rules then find no generation.
        assert_eq!(Epoch::strip(&format!("{}00", e.0)), format!("{}00", e.0));
        assert_eq!(Epoch::strip("ee00"), "ee00");
        assert!(!Epoch::is_epoch("EE00112233"));
        let d = DeviceId::random();
        let actor = Epoch::actor_of(Some(&e), &d);
        assert_eq!(actor.to_hex_string(), format!("{}{}", d.0, e.0));
        assert_eq!(Epoch::of_actor(&actor), Some(e));
        assert_eq!(Epoch::of_actor(&d.actor()), None);
        assert_eq!(device_hex(&actor), d.0);
        assert_eq!(Epoch::actor_of(None, &d), d.actor());
    }
}
