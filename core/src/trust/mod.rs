//! The write side of the trust model: every change that arrives from another device is judged
//! before it is merged.
//!
//! Reads are guarded by scope (which documents a device may hold, [`crate::sync::Scope`]).
//! Writes are guarded here: [`validate`] decides, for one automerge change and the school state
//! it is judged against, whether the change may enter this replica. It is pure and
//! deterministic: the same change and the same auth state give the same verdict on every
//! device, so validation itself never makes honest replicas diverge.
//!
//! # Which school state a change is judged against
//!
//! - A change to the `school` document: the school document at the change's own dependencies
//!   (its causal past), like a Matrix event judged against the auth events it references. The
//!   dependencies are part of the change's hash, so every replica reconstructs the same state.
//! - A change to any other document: the school document at the heads the change *declares*
//!   in its message ([`auth::declare`]; every local write declares the school heads the device
//!   held when it wrote). A change to a private part also declares the heads of the child's
//!   shared file, which says which class the child is in. The declaration is hashed with the
//!   change, so it cannot be altered in transit, and every replica that holds those heads
//!   computes the same view. A replica that does not hold them yet defers the change (it is
//!   neither merged nor refused; the next exchange brings the school document first). A head
//!   of the school's history from before its phone numbers were purged is resolved to its
//!   rewritten hash, at which the school state is the same less the phones
//!   ([`crate::store::school_history`]).
//! - The genesis change of every document (fixed actor, time 0) is accepted by its hash. The
//!   school's founding change (the one that creates the first administrator) is the trust
//!   root: accepted only into a store that has no school yet (creating or joining a school),
//!   like the school key in an invite.
//!
//! What a declared state cannot express: a member whose standing shrank (a role removed, a
//! class given to another head, a pairing ended) can still declare a school state from before,
//! as an honest phone that has not heard does. The certificate's signed roles bound what a
//! session accepts from its own device (the first hop), revocation cuts a device off, and a
//! replica that knows of the change of standing takes such a change (so replicas cannot
//! diverge) but lists it for an administrator's review ([`standing`]).
//!
//! # Rules
//!
//! The actor of every change must be a device registered in the auth state
//! (`school.devices/<device id>`, whose id is the actor, or starts it: followed by a restore
//! epoch, `ee` and four bytes, when the device's copy was restored from a backup,
//! [`crate::ids::Epoch`], for an administrator's device or a console device only; and then, in a re-based document, by the generation's tag the school
//! recorded), and the change is attributed to that device's member. Then, per operation, by the path of the object it writes:
//!
//! | document | path | who may write |
//! |---|---|---|
//! | any | root keys (`schema`, `kind`, top-level maps) | genesis only |
//! | `school` | everything | 领导组, 档案管理员 |
//! | `school` | `erasures/<child id>` (an erased child's file: date, reason, who) | 领导组, 档案管理员; deleting it: nobody |
//! | `school` | `rebases/<doc key>` (a re-based document's generation) | 领导组, 档案管理员 |
//! | `school` | `school.left:<child id>` (a child who left: date, who; deleting it: the child returned) | 领导组, 档案管理员 |
//! | `child/<id>`, `child/<id>/private` of a child who left (in the declared state) | anything | administrators only: the child has no other carers |
//! | a re-based document | its base change (as the school records it) | taken as recorded; the records it copies keep their `author` |
//! | a re-based document | a change not descending from the base change | nobody (admission, against this replica's school document) |
//! | `child/<id>`, `child/<id>/private`, `child/<id>/staff` of an erased child | anything | nobody, whatever state the change declares (judged against this replica's school document, [`crate::store::Batch`] admission) |
//! | any | a change of a device revoked in this replica's school document, handed on by another device | from a member's device: only the revoked device's member's own records (created by her devices), or what the carrier's member could write herself (admission, [`crate::store::Batch`]) |
//! | `school` | `devices/<id>/revoked` | set to true only; never deleted, the device entry never made again over itself (with the two rows above: a revocation is final) |
//! | `school` | `members/<id>` | never made again over itself; `active` not set back to true by the member herself |
//! | `child/<id>` | `profile.class_id`; `profile.left` (why a child left, the school she moved to) | 领导组, 档案管理员 |
//! | `child/<id>` | `flags` (三特) | teachers and administrators who care for the child; nobody once the declared school is split by role (`school.split_for_roles`) |
//! | `child/<id>` | the staff fields of `father`, `mother` (`work_place`, `employer`, `employer_phone`), `guardian` (`occupation`, `age`, `health`) | the child's carers; once the declared school is split by role: nobody, except an administrator deleting one (the split moving it) |
//! | `child/<id>/staff` | `flags` (三特) and the staff fields above, nothing else | administrators; the 班主任 of the child's class (and, as releases before took it, any carer with a role that sees staff fields: one paired with a child of another class no longer receives the part); unless the guardian withdrew consent to the basic file |
//! | `contact/<member>` | `contact.phone` | administrators |
//! | `child/<id>` | `profile.consent_*` (guardian consent, [`crate::consent`]) | administrators; the 班主任 of the child's class |
//! | `child/<id>` | lifting a withdrawal (`profile.consent_withdrawn*`) | only by a change that records a grant (`consent_recorded`, a new value at every grant, or, from older builds, a changed `consent_covers`, date or form) covering what it lifts ([`crate::consent::lifted_without_grant`]) |
//! | any | an increment (a counter), a mark outside text | nobody: no layout has them, and automerge lets an increment naming a value that is not a counter take its place |
//! | any | writing or deleting a map key | superseding what the key held at the change's dependencies (and what the change itself wrote there before): a value written, all of it; a delete, all of it or all but one (a conflict's resolution): automerge takes an operation superseding any operation it names, one written meanwhile on another device included, which would take it away without the conflict an honest overwrite leaves; and one superseding nothing where the key held a value would stand beside it as if concurrent (a device entry made again without its `revoked`) |
//! | any | the change's first operation number | one after the largest of the changes it depends on, as automerge's transaction numbers it: a larger start would win every conflict the change makes by number alone |
//! | `child/<id>` | `profile`, `father`, `mother`, `guardian` | the child's carers, unless the guardian withdrew consent to the basic file |
//! | `child/<id>/private` | `identity`, `private_flags` | administrators; the 班主任 of the child's class (and, as releases before took it, any carer holding a role that sees private data: a 班主任 paired with a child of another class no longer receives the part, `scope::may_see`); only with consent covering the private part (below) |
//! | `class/<id>` | `profile` | administrators; the class's 班主任 |
//! | `school/keys` | `keys.child_id`, exactly 32 bytes; nothing else | 领导组, 档案管理员 |
//! | `child/<id>`, `child/<id>/private` | `records/<new id>` | as the next row, and only while consent allows it: not after a withdrawal of what covers the document; in the private part, only with consent covering it once the school requires consent |
//! | any | `records/<new id>` | a member who may write the kind in this document: `author` = the change's member, `device` = its device, `author_role` one of the member's roles that writes the kind, `child` = the file's child |
//! | any | `records/<id>/void/*` | the record's author or an administrator; `by` = the change's member, `reason` not empty |
//! | any | `records/<id>/progress/<new id>` | a writer of 学习帮扶计划 who cares for the child, while consent to the basic file is not withdrawn; `author` = the change's member |
//! | any | `records/<id>/progress/<id>/*` | the entry's author |
//! | any | `records/<id>/fields/*`, `happened_on` | the record's author; `happened_on` and a progress entry's `date` (made or edited) a date as the app stores it (`2026-11-20`). A date after the day after the change's own clock reading (or, when that reading is before 2026, after the receiver's tomorrow) is taken and listed for review, not refused: releases before `dates::parse_past_date` took any date |
//! | any | `records/<id>` author, kind, device, child, role, time | never after creation |
//! | any | deleting a record | never |
//!
//! "Carers" are as for reading ([`crate::archive::Archive::may_see`]): administrators, the
//! 班主任 of the child's class (the class the file says, at the change's dependencies), and
//! members with an active pairing with the child; for a child who left the school (in the
//! state the change declares), administrators only. The author of an existing record is the
//! member of the device that created the record's object (its object id carries the actor), so
//! it never depends on what a later change wrote into `author`.
//!
//! **Consent** ([`crate::consent::gate`]) is read from the child's shared file: for a change to
//! the shared file at the change's own dependencies, for a change to the private part at the
//! child heads it declares (`␞c=`), both hashed with the change, so every replica decides the
//! same. Whether consent is required is read from the declared school state
//! (`school.consent_required`): private parts written before an administrator required it
//! stay acceptable everywhere, which is what lets an existing school's files keep syncing.
//!
//! A change larger than [`MAX_CHANGE_BYTES`] is refused whoever wrote it.

pub mod auth;
pub(crate) mod paths;
mod rules;
pub mod standing;

pub use auth::{Declared, declare, display_message};
pub use rules::{
    AuthState, Verdict, author_of, consent_refusal, device_of_actor, may_edit_field,
    may_record_consent, object_author, validate, validate_dated,
};

/// The largest change accepted from another device.
pub const MAX_CHANGE_BYTES: usize = 2 * 1024 * 1024;

/// The most bytes of changes a day (UTC) a device keeps from one colleague who does not
/// administer, all her devices together, by a session with one of them or in her files (the
/// changes it takes, and the refused ones the quarantine keeps for review), as the hub does
/// with its quota: a modified app cannot fill a colleague's phone, or the office's computer,
/// with changes it knows are refused. Not from an administrator's devices, which relay. A
/// member's own changes in a day are a small fraction of it (a record is about a kilobyte; a
/// year of a class's files a few megabytes).
pub const PEER_DAILY_CHANGE_BYTES: u64 = 16 * 1024 * 1024;
