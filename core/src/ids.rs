//! Identifiers.
//!
//! Every id is a short lower-case string, safe in a file name and a document key:
//! - [`RecordId`] is time-ordered: 12 hex digits of the device's clock in milliseconds, then 8
//!   random hex digits, so ids sort roughly by when they were written and never collide across
//!   devices. Ordering *for people* never relies on it (see [`crate::records`]).
//! - A [`ChildId`] is derived from the school and the child's 学籍号 when there is one, so two
//!   devices importing the same roster produce the same document instead of a duplicate child.
//! - [`DeviceId`] is 16 random bytes; it is also the automerge actor of everything the device
//!   writes.

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

impl ChildId {
    /// The id of a child known to the school registry: the same on every device.
    pub fn for_student(school: &SchoolId, student_no: &str) -> Self {
        ChildId(digest_hex(&["child", &school.0, student_no.trim()], 8))
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
    fn child_id_is_stable_per_school_and_student_number() {
        let s = SchoolId::from("s1");
        assert_eq!(
            ChildId::for_student(&s, "G3403212015"),
            ChildId::for_student(&s, " G3403212015 ")
        );
        assert_ne!(
            ChildId::for_student(&s, "G3403212015"),
            ChildId::for_student(&SchoolId::from("s2"), "G3403212015")
        );
    }

    #[test]
    fn device_actor_is_its_bytes() {
        let d = DeviceId::random();
        assert_eq!(d.actor().to_hex_string(), d.0);
    }
}
