//! Work not carried over into a re-based file (`crate::carry`), told to the member who typed
//! it. When the office re-bases a child's file, her device carries what she wrote offline on
//! the older generation into the new one; what the rules refuse by then (a consent withdrawn
//! meanwhile, a role lost) is not kept, and must not be. The batch that replaced her copy
//! notes it (`crate::carry::NOT_CARRIED`); after the sync or import that did it, she is told
//! which record was not kept and why, so that nothing she typed is lost without her knowing.

use super::Archive;
use crate::carry::{NOT_CARRIED, NotCarried, NotKept};
use crate::doc::DocId;
use crate::error::Result;
use crate::ids::ChildId;
use crate::kinds::RecordKind;

impl Archive {
    /// After a sync or an import: what this device wrote offline and could not carry over
    /// into a child's re-based file since the last such call, one line each in Chinese (the
    /// child, the kind of record and its date, the rules' reason), and forgets it. The app
    /// shows the lines to the member: what she typed there is not kept.
    pub fn take_not_carried(&mut self) -> Result<Vec<String>> {
        let lines = self.not_carried()?;
        if !lines.is_empty() {
            self.forget_not_carried()?;
        }
        Ok(lines)
    }

    /// [`Archive::take_not_carried`] without forgetting it: an app shows the lines until the
    /// member has seen them ([`Archive::forget_not_carried`]), whatever sync noted them.
    pub fn not_carried(&mut self) -> Result<Vec<String>> {
        let noted = self.store.meta(NOT_CARRIED)?.unwrap_or_default();
        if noted.is_empty() {
            return Ok(Vec::new());
        }
        // A child erased since is not named (`crate::carry::notes_after_purge` forgets her
        // name at the purge; this holds until then).
        let school = self.store.school_view()?;
        let mut lines = Vec::new();
        for mut note in noted.lines().filter_map(NotCarried::parse) {
            if let (Some(c), Some(school)) = (note.doc.child(), &school)
                && school.is_erased(c)
            {
                note.child.clear();
                note.what = NotKept::Erased;
            }
            let line = self.not_carried_line(&note)?;
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        Ok(lines)
    }

    /// Forgets what [`Archive::not_carried`] says: she has been told.
    pub fn forget_not_carried(&mut self) -> Result<()> {
        self.store.write(|b| {
            b.set_meta(NOT_CARRIED, "");
            Ok(())
        })
    }

    /// One note, as a person reads it: "王晓雨的谈心记录（2026-11-25）未能保留：……。"
    fn not_carried_line(&self, note: &NotCarried) -> Result<String> {
        let what = match &note.what {
            NotKept::Record { kind, date } => self.noted_record(note, kind, date)?,
            NotKept::Part { kind, date } => {
                format!("{}上你做的修改", self.noted_record(note, kind, date)?)
            }
            NotKept::Sections => format!("{}中你做的修改", self.noted_file(note)?),
            NotKept::StaleCopy => {
                return Ok(format!(
                    "{}已由学校重建，并且不再发给本机：你在旧版本上写下、还没有同步的记录没有保留。",
                    self.noted_file(note)?
                ));
            }
            NotKept::Erased => {
                // The file is not named: the erasure is final.
                return Ok(
                    "学校删除了一名学生的档案，你在其中写下、还没有同步的记录随之删除，不再保留。"
                        .into(),
                );
            }
        };
        Ok(format!(
            "{what}未能保留：{}。",
            note.why.trim().trim_end_matches('。')
        ))
    }

    /// The file a note is on, as a line names it: "王晓雨的档案", "王晓雨档案的隐私部分".
    fn noted_file(&self, note: &NotCarried) -> Result<String> {
        let Some(child) = note.doc.child() else {
            return self.doc_label(&note.doc);
        };
        let name = self.noted_child(note, child)?;
        Ok(match part_of_file(&note.doc) {
            Some(part) => format!("{name}档案的{part}"),
            None => format!("{name}的档案"),
        })
    }

    /// A record a note is on, by its kind (the key as stored) and date, as a line names it:
    /// "王晓雨的谈心记录（2026-11-25）", "王晓雨的心理辅导记录（隐私部分，2026-11-25）".
    fn noted_record(&self, note: &NotCarried, kind: &str, date: &str) -> Result<String> {
        let (whose, part) = match note.doc.child() {
            Some(child) => (self.noted_child(note, child)?, part_of_file(&note.doc)),
            None => (self.doc_label(&note.doc)?, None),
        };
        let kind = RecordKind::parse(kind).map_or("记录", RecordKind::label);
        let about: Vec<&str> = part
            .into_iter()
            .chain(Some(date).filter(|d| !d.is_empty()))
            .collect();
        let about = if about.is_empty() {
            String::new()
        } else {
            format!("（{}）", about.join("，"))
        };
        Ok(format!("{whose}的{kind}{about}"))
    }

    /// The child whose file a note is on, by the name the note keeps, or else as this device
    /// knows her.
    fn noted_child(&self, note: &NotCarried, child: &ChildId) -> Result<String> {
        if !note.child.is_empty() {
            return Ok(note.child.clone());
        }
        Ok(self
            .projected_name(child)?
            .unwrap_or_else(|| child.to_string()))
    }
}

/// The part of a child's file a document is, as people call it (`None`: the file shared with
/// her carers).
fn part_of_file(doc: &DocId) -> Option<&'static str> {
    match doc {
        DocId::Private(_) => Some("隐私部分"),
        DocId::Staff(_) => Some("教师部分"),
        _ => None,
    }
}
