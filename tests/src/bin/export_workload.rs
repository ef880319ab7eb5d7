//! Exports the workload of BENCHMARKS §5 as JSON, so that other sync systems (automerge-repo,
//! PouchDB: `tests/peers/`) load exactly the data our benchmarks sync.
//!
//! The data is made by our own fixtures, as the sync bench makes it: the school of
//! [`workload::school_with`] (40 children), a year of history written by the 班主任
//! ([`workload::year_of_history`]), then the teacher's offline week
//! ([`workload::teachers_week`]: 10 家访, 10 谈心, 5 电话记录 and 3 guardian-phone edits, on
//! 28 children). Each child file is read back from the teacher's archive as she sees it
//! (`Archive::child_file`), before and after the week; the week is the difference.
//!
//! ```text
//! cargo run --release -p shouwang-tests --bin export-workload -- OUT.json
//! ```
//!
//! Output: `{ children: [{id, name, class, sections: {section: {field: value}}, records:
//! [{id, kind, happened_on, author, author_role, device, written_at, fields: {field: value}}]}],
//! week: {records: [{child, record}], edits: [{child, section, fields}]}, floor: {docs, raw,
//! compressed} }`, where `floor` is what §5 measures as the floor: the week's new automerge
//! changes, raw and compressed with zstd -19.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a fixture tool: a panic is a failure

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use shouwang_core::Archive;
use shouwang_core::archive::ChildFile;
use shouwang_core::records::RecordView;
use shouwang_tests::workload::{self, Entry};

fn fields(list: &[shouwang_core::records::ShownField]) -> Value {
    let mut m = Map::new();
    for f in list {
        m.insert(f.key.clone(), Value::String(f.value.clone()));
    }
    Value::Object(m)
}

fn record(r: &RecordView) -> Value {
    json!({
        "id": r.meta.id.0,
        "kind": r.meta.kind_key,
        "happened_on": r.meta.happened_on,
        "author": r.meta.author,
        "author_role": r.meta.author_role,
        "device": r.meta.device,
        "written_at": r.meta.written_at,
        "fields": fields(&r.fields),
    })
}

fn child(file: &ChildFile) -> Value {
    let mut sections = Map::new();
    for s in &file.sections {
        sections.insert(s.key.clone(), fields(&s.fields));
    }
    json!({
        "id": file.id.to_string(),
        "name": file.name,
        "class": file.class_name,
        "sections": sections,
        "records": file.records.iter().map(record).collect::<Vec<_>>(),
    })
}

fn files(archive: &mut Archive, names: &[String]) -> Vec<ChildFile> {
    names
        .iter()
        .map(|n| archive.child_file(n).unwrap())
        .collect()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "workload.json".into());
    let mut peers =
        workload::school_with(workload::CHILDREN - shouwang_tests::fixtures::CHILDREN.len());
    let teacher = &mut peers[1].archive;
    workload::year_of_history(teacher);
    let names = workload::names(teacher);
    let before = files(teacher, &names);
    let base = workload::snapshot(teacher);
    let week = workload::week(&names);
    for e in &week {
        e.apply(teacher);
    }
    let floor = workload::new_changes(teacher, &base);
    let after = files(teacher, &names);

    let mut new_records = Vec::new();
    for (b, a) in before.iter().zip(&after) {
        let known: BTreeSet<&str> = b.records.iter().map(|r| r.meta.id.0.as_str()).collect();
        for r in a
            .records
            .iter()
            .filter(|r| !known.contains(r.meta.id.0.as_str()))
        {
            new_records.push(json!({ "child": a.id.to_string(), "record": record(r) }));
        }
    }
    let edits: Vec<Value> = week
        .iter()
        .filter_map(|e| match e {
            Entry::Edit {
                child,
                section,
                fields,
            } => {
                let id = after
                    .iter()
                    .find(|f| &f.name == child)
                    .unwrap()
                    .id
                    .to_string();
                let m: Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                    .collect();
                Some(json!({ "child": id, "section": section, "fields": m }))
            }
            Entry::Record { .. } => None,
        })
        .collect();
    let doc = json!({
        "about": "BENCHMARKS §5: 40 children with a year of history, and a 班主任's offline week",
        "children": before.iter().map(child).collect::<Vec<_>>(),
        "week": { "records": new_records, "edits": edits },
        "floor": { "docs": floor.docs, "raw": floor.raw, "compressed": floor.compressed },
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    eprintln!(
        "{out}: {} children, {} records, week {} records + {} edits, floor {} bytes",
        before.len(),
        before.iter().map(|f| f.records.len()).sum::<usize>(),
        new_records.len(),
        edits.len(),
        floor.compressed
    );
}
