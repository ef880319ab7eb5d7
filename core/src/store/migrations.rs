//! Schema migrations, kept together as data.
//!
//! Each [`Migration`] is a version, the SQL that takes the store from the previous version to
//! this one, and whether the query projections must be rebuilt from the documents afterwards
//! (documents are the truth; projections can always be recomputed). The version applied is kept
//! in `PRAGMA user_version`. A store newer than this build is refused, never "downgraded".

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// One step of the schema.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
    /// Rebuild every projection from the documents after this step.
    pub rebuild_projections: bool,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (
    doc_id   TEXT PRIMARY KEY,
    snapshot BLOB,
    heads    TEXT NOT NULL DEFAULT '',
    updated  INTEGER NOT NULL
);
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    hash   BLOB NOT NULL,
    bytes  BLOB NOT NULL
);
CREATE UNIQUE INDEX changes_by_doc ON changes (doc_id, hash);
CREATE TABLE p_classes (class_id TEXT PRIMARY KEY, name TEXT NOT NULL, head_teacher TEXT);
CREATE TABLE p_members (
    member_id TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    roles     TEXT NOT NULL,
    class_id  TEXT,
    active    INTEGER NOT NULL
);
CREATE TABLE p_children (
    child_id     TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    sex          TEXT,
    birth_date   TEXT,
    class_id     TEXT,
    parents_away TEXT,
    boarding     INTEGER,
    hardship     INTEGER,
    talent       INTEGER,
    special      INTEGER
);
CREATE INDEX p_children_by_class ON p_children (class_id, name);
CREATE TABLE p_pairings (
    pairing_id TEXT PRIMARY KEY,
    carer      TEXT NOT NULL,
    child_id   TEXT NOT NULL,
    role       TEXT NOT NULL,
    active     INTEGER NOT NULL
);
CREATE INDEX p_pairings_by_carer ON p_pairings (carer, child_id);
CREATE TABLE p_records (
    record_id   TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    child_id    TEXT,
    kind        TEXT NOT NULL,
    happened_on TEXT NOT NULL,
    author      TEXT NOT NULL,
    written_at  INTEGER NOT NULL,
    voided      INTEGER NOT NULL
);
CREATE INDEX p_records_by_child ON p_records (child_id, happened_on);
CREATE INDEX p_records_by_author ON p_records (author, kind, happened_on);
CREATE INDEX p_records_by_doc ON p_records (doc_id);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 2,
        // The role a record was written in (谈心 by the 班主任 vs. by the 爱心妈妈 count
        // towards different rules), and the 学籍号 for finding a child by registry number.
        sql: r#"
ALTER TABLE p_records ADD COLUMN author_role TEXT NOT NULL DEFAULT '';
ALTER TABLE p_children ADD COLUMN student_no TEXT;
CREATE INDEX p_children_by_student_no ON p_children (student_no);
"#,
        rebuild_projections: true,
    },
    Migration {
        version: 3,
        // Per-peer, per-document sync state: the heads both sides are known to share, so a
        // reconnect names only documents that changed since, and automerge's sync starts from
        // there instead of a bloom filter over the whole history.
        sql: r#"
CREATE TABLE sync_state (
    peer         TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    shared_heads TEXT NOT NULL,
    state        BLOB NOT NULL,
    PRIMARY KEY (peer, doc_id)
);
CREATE TABLE sync_peers (
    peer         TEXT PRIMARY KEY,
    last_success INTEGER,
    last_error   TEXT
);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 4,
        sql: r#"
CREATE TABLE quarantine (
    doc_id  TEXT NOT NULL,
    hash    BLOB NOT NULL,
    actor   TEXT NOT NULL,
    reason  TEXT NOT NULL,
    source  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    bytes   BLOB NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
CREATE TABLE held (
    peer    TEXT NOT NULL,
    doc_id  TEXT NOT NULL,
    heads   TEXT NOT NULL,
    PRIMARY KEY (peer, doc_id)
);
CREATE TABLE out_of_scope (doc_id TEXT PRIMARY KEY);
CREATE TABLE intake (
    member  TEXT NOT NULL,
    day     TEXT NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (member, day)
);
CREATE TABLE refusals (
    peer    TEXT NOT NULL,
    doc_id  TEXT NOT NULL,
    count   INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (peer, doc_id)
);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 5,
        // What the guardian's consent covers now (`basic,private`; `crate::consent`), for due
        // work ("缺监护人同意") without opening every file.
        sql: "ALTER TABLE p_children ADD COLUMN consent TEXT;",
        rebuild_projections: true,
    },
    Migration {
        version: 6,
        // Changes of a revoked device that another device handed on and this side accepted
        // (`store::admit`): merged, and listed for an administrator to review, with who
        // handed them on.
        sql: r#"
CREATE TABLE relayed (
    doc_id  TEXT NOT NULL,
    hash    BLOB NOT NULL,
    actor   TEXT NOT NULL,
    source  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 7,
        // The hub's delivery log: which documents a session sent to which device, and when
        // (`store/deliveries.rs`). Ids only, bounded in rows.
        sql: r#"
CREATE TABLE deliveries (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    device TEXT NOT NULL,
    member TEXT NOT NULL,
    doc_id TEXT NOT NULL
);
CREATE INDEX deliveries_by_device ON deliveries (device, id);
CREATE INDEX deliveries_by_doc ON deliveries (doc_id, id);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 8,
        // The office console on the hub (`apps/office`): members' password hashes (argon2id,
        // PHC strings), sessions (the SHA-256 of the cookie's token, never the token) and
        // failed logins (for the lock-out). Only the hub's store has rows in them; they live
        // here so that they are encrypted with hub.db and copied by its backup.
        sql: r#"
CREATE TABLE office_passwords (
    member_id TEXT PRIMARY KEY,
    hash      TEXT NOT NULL,
    set_at    INTEGER NOT NULL
);
CREATE TABLE office_sessions (
    token_hash TEXT PRIMARY KEY,
    member_id  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
);
CREATE INDEX office_sessions_by_member ON office_sessions (member_id);
CREATE TABLE office_failures (
    member_key TEXT NOT NULL,
    source     TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX office_failures_by_key ON office_failures (member_key, source, at);
"#,
        rebuild_projections: false,
    },
    Migration {
        version: 9,
        // Changes accepted at the school state they declare that their member's standing here
        // and now would not allow (made while the member did not yet know of a class given to
        // another head, an ended pairing or a lost role): merged, and listed for an
        // administrator to review (`store::admit`, "Standing lost while offline").
        sql: r#"
CREATE TABLE outdated (
    doc_id  TEXT NOT NULL,
    hash    BLOB NOT NULL,
    actor   TEXT NOT NULL,
    reason  TEXT NOT NULL,
    source  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
"#,
        rebuild_projections: false,
    },
    // The school document's history without the members' phone numbers
    // (`store::school_history`): each rewritten change's original hash, so that what older
    // changes declare still resolves.
    Migration {
        version: 10,
        sql: r#"
CREATE TABLE school_history (
    old BLOB PRIMARY KEY,
    new BLOB NOT NULL
) WITHOUT ROWID;
"#,
        rebuild_projections: false,
    },
    // The child documents holding a conflict (`store::conflicted`), so a school-wide list of
    // open conflicts reads only those; filled by the rebuild.
    Migration {
        version: 11,
        sql: r#"
CREATE TABLE p_conflicted (doc_id TEXT PRIMARY KEY) WITHOUT ROWID;
"#,
        rebuild_projections: true,
    },
    // Two fewer pages in every durable write (BENCHMARKS §1: 9 pages where a bare insert
    // writes 1). `changes` loses AUTOINCREMENT, whose counter row in `sqlite_sequence` was a page
    // per write: its rowids still grow, since a row is only ever added above the largest. And a
    // record's projection row lives in its `record_id` key's tree, not in a rowid table beside
    // an index on that key; the rebuild fills it again.
    Migration {
        version: 12,
        sql: r#"
CREATE TABLE changes_v12 (
    seq    INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL,
    hash   BLOB NOT NULL,
    bytes  BLOB NOT NULL
);
INSERT INTO changes_v12 (seq, doc_id, hash, bytes) SELECT seq, doc_id, hash, bytes FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v12 RENAME TO changes;
CREATE UNIQUE INDEX changes_by_doc ON changes (doc_id, hash);
DELETE FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE p_records;
CREATE TABLE p_records (
    record_id   TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    child_id    TEXT,
    kind        TEXT NOT NULL,
    happened_on TEXT NOT NULL,
    author      TEXT NOT NULL,
    written_at  INTEGER NOT NULL,
    voided      INTEGER NOT NULL,
    author_role TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX p_records_by_child ON p_records (child_id, happened_on);
CREATE INDEX p_records_by_author ON p_records (author, kind, happened_on);
CREATE INDEX p_records_by_doc ON p_records (doc_id);
"#,
        rebuild_projections: true,
    },
    // A console session remembers the member's standing it was opened under
    // (`Archive::member_grant`): a role taken away and given back, or a member deactivated and
    // reactivated, between two requests ends it. Sessions opened before have none and end at
    // their next request.
    Migration {
        version: 13,
        sql: r#"
ALTER TABLE office_sessions ADD COLUMN standing TEXT NOT NULL DEFAULT '';
"#,
        rebuild_projections: false,
    },
    // `p_children.consent` also keeps what the guardian withdrew or objected to
    // (`Consent::projected`: `basic,-private`), so that a guardian's no is not listed as
    // consent still to obtain; the rebuild writes it for every child.
    Migration {
        version: 14,
        sql: "",
        rebuild_projections: true,
    },
    // The office console: failed logins are forgotten by time at every login (`DELETE … WHERE
    // at <= ?`), which scanned the whole table without an index on `at`; and a session
    // remembers when it was last used, so that one left idle ends (sessions opened before have
    // 0 there and end at their next request).
    Migration {
        version: 15,
        sql: r#"
CREATE INDEX office_failures_by_at ON office_failures (at);
ALTER TABLE office_sessions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
"#,
        rebuild_projections: false,
    },
    // What the hub said a device may no longer hold also keeps what the device knows the hub
    // took of it (`Store::mark_out_of_scope`): work written after that is not dropped with
    // the file (`Archive::purge_out_of_scope`). Marks made before have none: nothing known.
    Migration {
        version: 16,
        sql: r#"
ALTER TABLE out_of_scope ADD COLUMN covered TEXT;
"#,
        rebuild_projections: false,
    },
    // The documents a device dropped, having written in them, that it may see again
    // (`purged`): a write never starts one afresh (`Store::purge_remembering`).
    Migration {
        version: 17,
        sql: r#"
CREATE TABLE purged (doc_id TEXT PRIMARY KEY);
"#,
        rebuild_projections: false,
    },
    // What a dropped document held of the device's own work (`purged.tips`: the last change
    // of each of its actors there, 32 bytes each): a copy a file or a peer brings back
    // without them is not written on until it holds them (`Batch::change`). Marks made
    // before have none: nothing known.
    Migration {
        version: 18,
        sql: r#"
ALTER TABLE purged ADD COLUMN tips BLOB;
"#,
        rebuild_projections: false,
    },
    // The browsers a member logged in to the office console from (`office_browsers`: a
    // token's SHA-256): exempt from the lock-outs others' failed logins cause
    // (`apps/office/src/auth.rs`).
    Migration {
        version: 19,
        sql: r#"
CREATE TABLE office_browsers (
    token_hash TEXT PRIMARY KEY,
    member_id  TEXT NOT NULL,
    created    INTEGER NOT NULL
);
CREATE INDEX office_browsers_by_member ON office_browsers (member_id, created);
"#,
        rebuild_projections: false,
    },
    // A build before restore epochs (`ids::Epoch`) refused what a restored hub wrote under its
    // new actor ("修改来自未登记的设备"), what rested on it in the same document, and in every
    // other document what declared a school state holding it; and it held those documents
    // back from the peer (`held`). A refused change stays refused without being judged again.
    // This build takes such changes: once a store holds a refusal of an epoch's actor (a
    // device id, 32 hex digits, then `ee` and 8 digits, maybe a generation's 16), those rows
    // go with every refusal that only followed from another, and the held documents are
    // offered again, so the next sync brings them and this build judges them. A refusal that
    // stands is made again as it was (the rules are deterministic).
    Migration {
        version: 20,
        sql: r#"
CREATE TEMP TABLE epoch_refused AS
SELECT 1 FROM quarantine
 WHERE length(actor) IN (42, 58) AND substr(actor, 33, 2) = 'ee'
 LIMIT 1;
DELETE FROM held WHERE EXISTS (SELECT 1 FROM epoch_refused);
DELETE FROM quarantine
 WHERE reason IN ('依赖一项被拒绝的修改', '修改所依据的学校信息含有被拒绝的修改')
   AND EXISTS (SELECT 1 FROM epoch_refused);
DELETE FROM quarantine
 WHERE length(actor) IN (42, 58) AND substr(actor, 33, 2) = 'ee';
DROP TABLE epoch_refused;
"#,
        rebuild_projections: false,
    },
    // A record's projection row is keyed by its id and its document (the id first: ids are
    // looked up by prefix; as many pages a write as before). Keyed by the id alone, a
    // carer of two children could make a record in one file under the id of a record in the
    // other, and the second row written replaced the first (the other record gone from every
    // list and the due work, in an order each copy chose).
    Migration {
        version: 21,
        sql: r#"
DROP TABLE p_records;
CREATE TABLE p_records (
    doc_id      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    child_id    TEXT,
    kind        TEXT NOT NULL,
    happened_on TEXT NOT NULL,
    author      TEXT NOT NULL,
    written_at  INTEGER NOT NULL,
    voided      INTEGER NOT NULL,
    author_role TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (record_id, doc_id)
) WITHOUT ROWID;
CREATE INDEX p_records_by_child ON p_records (child_id, happened_on);
CREATE INDEX p_records_by_author ON p_records (author, kind, happened_on);
CREATE INDEX p_records_by_doc ON p_records (doc_id);
"#,
        rebuild_projections: true,
    },
];

/// Set in `meta` by a migration whose projections must be rebuilt, in its own transaction,
/// and cleared by the rebuild ([`super::Store::rebuild_projections`]).
pub const PROJECTIONS_STALE: &str = "projections_stale";

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every migration above the store's version up to `target`, each in its own
/// transaction. Returns whether projections must be rebuilt: a migration here asks for it, or
/// one before did and its rebuild never finished ([`PROJECTIONS_STALE`]).
pub fn apply(conn: &mut Connection, target: i64) -> Result<bool> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > latest() {
        return Err(Error::StoreTooNew {
            found: current,
            supported: latest(),
        });
    }
    let mut rebuild = false;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.pragma_update(None, "user_version", m.version)?;
        let stale = m.rebuild_projections && current > 0;
        if stale {
            // Kept until the rebuild is done: a process killed before (a phone's battery)
            // rebuilds at its next open, not never.
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')",
                [PROJECTIONS_STALE],
            )?;
        }
        tx.commit()?;
        rebuild |= stale;
    }
    let pending: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [PROJECTIONS_STALE],
            |r| r.get(0),
        )
        .optional()?;
    Ok(rebuild || pending.is_some())
}
