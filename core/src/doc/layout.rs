//! Key names of the document layout, kept in one place.

/// Root: schema version the document was last written with.
pub const SCHEMA: &str = "schema";
/// Root: document kind (`school`, `child`, `child_private`, `class`).
pub const KIND: &str = "kind";
/// Root map of care records, keyed by [`crate::ids::RecordId`].
pub const RECORDS: &str = "records";

/// School: profile map.
pub const SCHOOL_PROFILE: &str = "school";
/// School: classes by id.
pub const CLASSES: &str = "classes";
/// School: members by id.
pub const MEMBERS: &str = "members";
/// School: enrolled devices by id.
pub const DEVICES: &str = "devices";
/// School: pairings (结对帮扶) by id.
pub const PAIRINGS: &str = "pairings";
/// School: rule settings, by rule key.
pub const RULES: &str = "rules";
/// School: erased children's files, by child id (date, reason, who): the only trace kept.
pub const ERASURES: &str = "erasures";
/// School: documents re-based on their current state (history dropped), by document key: the
/// base change's actor and last op, date, reason, who.
pub const REBASES: &str = "rebases";

/// `contact/<member>`: the member's contact details (`phone`).
pub const CONTACT: &str = "contact";
/// School profile: set once the school's files are split by role (the staff part and the
/// members' contact documents hold what the shared file and the school document no longer do).
pub const SPLIT_FOR_ROLES: &str = "split_for_roles";

/// School keys (`school/keys`, administrators only): the map of secrets.
pub const KEYS: &str = "keys";
/// `audit/<device>`: the entries of a device's access log, keyed by zero-padded sequence number.
pub const AUDIT_ENTRIES: &str = "entries";
/// School keys: the [`crate::ids::SchoolSecret`] that keys child ids, 32 bytes.
pub const K_CHILD_ID: &str = "child_id";

/// Record: kind key.
pub const R_KIND: &str = "kind";
/// Record: the date it happened, `YYYY-MM-DD`, entered by the user.
pub const R_HAPPENED: &str = "happened_on";
/// Record: author member id.
pub const R_AUTHOR: &str = "author";
/// Record: the role the author wrote in.
pub const R_ROLE: &str = "author_role";
/// Record: device id.
pub const R_DEVICE: &str = "device";
/// Record: device clock when written, ms since the epoch. Shown, never trusted for ordering.
pub const R_WRITTEN: &str = "written_at";
/// Record: the child (for class records, absent).
pub const R_CHILD: &str = "child";
/// Record: map of form fields.
pub const R_FIELDS: &str = "fields";
/// Record: void map (`by`, `at`, `reason`), empty while the record stands.
pub const R_VOID: &str = "void";
/// Record: 进步档案 entries of a study plan, by id.
pub const R_PROGRESS: &str = "progress";
/// A progress entry's date (`records/<id>/progress/<entry>/date`).
pub const R_PROGRESS_DATE: &str = "date";
