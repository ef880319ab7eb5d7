//! The forms of the record kinds and of the file's sections, as the core defines them, so the
//! app builds its screens from the lists the core validates against.

use shouwang_core::forms::{FieldKind, FieldSpec};
use shouwang_core::kinds::{DocPart, PROGRESS_FIELDS, RecordKind, SECTIONS};

/// A choice of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChoiceOption {
    /// What is stored (and may be sent back as the value).
    pub key: String,
    /// What is shown (may be sent back as the value too).
    pub label: String,
}

/// What a field holds, so the app picks the input widget.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FieldType {
    /// Free text (several lines); concurrent edits merge character by character.
    Text,
    /// One short line (at most 200 characters).
    Line,
    Phone,
    /// `YYYY-MM-DD`.
    Date,
    Integer {
        min: i64,
        max: i64,
    },
    Decimal {
        min: f64,
        max: f64,
    },
    /// Send `是` or `否`.
    Boolean,
    Choice {
        options: Vec<ChoiceOption>,
    },
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FormField {
    pub key: String,
    /// Chinese label.
    pub label: String,
    pub required: bool,
    pub field_type: FieldType,
}

/// Where records of a kind live, so the app knows whether to ask for a child or a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RecordTarget {
    /// The child's shared file.
    Child,
    /// The child's private file (班主任, leadership and the archivist only).
    PrivateFile,
    /// A class log: give `class_id`, not `child_id`.
    Class,
}

impl From<DocPart> for RecordTarget {
    fn from(p: DocPart) -> Self {
        match p {
            // No record kind lives in the staff part (it holds fields only).
            DocPart::Child | DocPart::Staff => RecordTarget::Child,
            DocPart::Private => RecordTarget::PrivateFile,
            DocPart::Class => RecordTarget::Class,
        }
    }
}

/// A kind of care record and its form.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RecordKindInfo {
    pub key: String,
    /// Chinese name (`家访记录`).
    pub label: String,
    pub target: RecordTarget,
    /// Roles that write this kind, in Chinese (leadership and the archivist write every kind).
    pub writers: Vec<String>,
    pub fields: Vec<FormField>,
    /// Whether 进步档案 entries can be added to it ([`progress_form`]).
    pub has_progress: bool,
}

/// A section of a child's file and its form, for `ShouwangClient.edit_child`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SectionInfo {
    pub key: String,
    pub label: String,
    pub private: bool,
    pub fields: Vec<FormField>,
}

fn field_type(kind: FieldKind) -> FieldType {
    match kind {
        FieldKind::Text => FieldType::Text,
        FieldKind::Line => FieldType::Line,
        FieldKind::Phone => FieldType::Phone,
        FieldKind::Date => FieldType::Date,
        FieldKind::Int { min, max } => FieldType::Integer { min, max },
        FieldKind::Decimal { min, max } => FieldType::Decimal { min, max },
        FieldKind::Bool => FieldType::Boolean,
        FieldKind::Choice(choices) => FieldType::Choice {
            options: choices
                .iter()
                .map(|(key, label)| ChoiceOption {
                    key: (*key).into(),
                    label: (*label).into(),
                })
                .collect(),
        },
    }
}

fn form(specs: &[FieldSpec]) -> Vec<FormField> {
    specs
        .iter()
        .map(|f| FormField {
            key: f.key.into(),
            label: f.label.into(),
            required: f.required,
            field_type: field_type(f.kind),
        })
        .collect()
}

/// Every kind of care record with its form, in display order.
#[uniffi::export]
pub fn record_kinds() -> Vec<RecordKindInfo> {
    RecordKind::ALL
        .iter()
        .map(|&k| RecordKindInfo {
            key: k.key().into(),
            label: k.label().into(),
            target: k.part().into(),
            writers: k.writers().iter().map(|r| r.label().into()).collect(),
            fields: form(k.fields()),
            has_progress: k == RecordKind::StudyPlan,
        })
        .collect()
}

/// The form of a 进步档案 entry under a 学习帮扶计划.
#[uniffi::export]
pub fn progress_form() -> Vec<FormField> {
    form(PROGRESS_FIELDS)
}

/// The sections of a child's file with their forms.
#[uniffi::export]
pub fn profile_sections() -> Vec<SectionInfo> {
    SECTIONS
        .iter()
        .map(|s| SectionInfo {
            key: s.key.into(),
            label: s.label.into(),
            private: s.part == DocPart::Private,
            fields: form(s.fields),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_form_with_chinese_labels() {
        let kinds = record_kinds();
        assert_eq!(kinds.len(), 13);
        let visit = &kinds[0];
        assert_eq!(
            (visit.key.as_str(), visit.label.as_str()),
            ("home_visit", "家访记录")
        );
        let notes = visit.fields.iter().find(|f| f.key == "notes");
        assert!(notes.is_some_and(|f| f.required && f.label == "情况记录"));
        assert!(kinds.iter().any(|k| k.target == RecordTarget::Class));
        assert_eq!(progress_form().len(), 2);
        assert!(
            profile_sections()
                .iter()
                .any(|s| s.private && s.key == "identity")
        );
    }
}
