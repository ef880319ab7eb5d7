//! The seed corpora, made by running the real code (see `src/bin/seeds.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::Path;

use shouwang_core::bundle::{Bundle, Held};
use shouwang_core::membership::DeviceKey;
use shouwang_core::sync::Event;
use shouwang_relay::handshake::Message;
use shouwang_tests::roster::{self, ChildRow, Column};

use crate::{Hub, World, bundle_payload, device_endpoint, join_frames, uncompressed_sync_frame};

/// The roster table of the test fixtures' school, with every column the importer reads.
fn roster_table() -> Vec<Vec<String>> {
    let columns = [
        shouwang_tests::fixtures::ROSTER_COLUMNS.as_slice(),
        &[Column::IdNumber, Column::Boarding],
    ]
    .concat();
    let children = shouwang_tests::fixtures::CHILDREN
        .iter()
        .enumerate()
        .map(|(i, &(no, name))| ChildRow {
            sex: if i % 2 == 0 { "女" } else { "男" }.into(),
            parents_away: ["父亲", "母亲", "父母"][i % 3].into(),
            id_number: "340321201703050023".into(),
            boarding: if i % 2 == 0 { "是" } else { "否" }.into(),
            ..shouwang_tests::fixtures::roster_row(no, name)
        });
    roster::table(&columns, children)
}

/// Frames of a real exchange between the office and 刘桂兰's phone: (what her phone sent, what
/// the office sent), each in order.
fn real_sync(world: &World) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut office = world.open_admin();
    let mut phone = world.open_mother();
    let mut so = world.office_session(&mut office.archive);
    let mut sp = world.mother_session(&mut phone.archive);
    let (mut from_phone, mut from_office) = (Vec::new(), Vec::new());
    let mut to_office = sp
        .handle(phone.archive.store(), Event::Start)
        .unwrap()
        .frames;
    let mut to_phone = so
        .handle(office.archive.store(), Event::Start)
        .unwrap()
        .frames;
    for _ in 0..100 {
        if to_office.is_empty() && to_phone.is_empty() {
            break;
        }
        let mut next_phone = Vec::new();
        for f in to_office.drain(..) {
            next_phone.extend(
                so.handle(office.archive.store(), Event::Frame(&f))
                    .unwrap()
                    .frames,
            );
            from_phone.push(f);
        }
        let mut next_office = Vec::new();
        for f in to_phone.drain(..) {
            next_office.extend(
                sp.handle(phone.archive.store(), Event::Frame(&f))
                    .unwrap()
                    .frames,
            );
            from_office.push(f);
        }
        to_office = next_office;
        to_phone = next_phone;
    }
    (from_phone, from_office)
}

struct Seeds<'a> {
    root: &'a Path,
    count: usize,
}

impl Seeds<'_> {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        self.count += 1;
        Ok(())
    }

    fn put_mode(&mut self, target: &str, name: &str, mode: u8, bytes: &[u8]) -> io::Result<()> {
        let mut b = vec![mode];
        b.extend_from_slice(bytes);
        self.put(target, name, &b)
    }
}

/// Writes every target's seeds under `root`; returns how many.
pub fn write_all(root: &Path) -> io::Result<usize> {
    let world = World::get();
    let mut s = Seeds { root, count: 0 };

    // Sync: the real exchange, frame by frame and as whole conversations.
    let (from_phone, from_office) = real_sync(world);
    for (i, f) in from_phone.iter().chain(&from_office).enumerate() {
        s.put("wire_frame", &format!("frame-{i:02}"), f)?;
    }
    let plain = |fs: &[Vec<u8>]| -> Vec<Vec<u8>> {
        fs.iter().map(|f| uncompressed_sync_frame(f)).collect()
    };
    for (i, f) in from_phone.iter().chain(&from_office).enumerate() {
        s.put(
            "wire_frame",
            &format!("plain-{i:02}"),
            &uncompressed_sync_frame(f),
        )?;
    }
    s.put_mode(
        "session",
        "phone-to-office",
        0,
        &join_frames(&plain(&from_phone)),
    )?;
    s.put_mode(
        "session",
        "office-to-phone",
        1,
        &join_frames(&plain(&from_office)),
    )?;
    let mut stream = Vec::new();
    for f in from_phone.iter().chain(&from_office) {
        stream.extend_from_slice(&(f.len() as u32).to_le_bytes());
        stream.extend_from_slice(f);
    }
    s.put(
        "frame_reader",
        "sync-stream",
        &[[3, 255].as_slice(), &stream].concat(),
    )?;
    s.put(
        "frame_reader",
        "small-limit",
        &[[0, 1].as_slice(), &stream].concat(),
    )?;

    // Documents 刘桂兰's phone holds, whole and as the changes the office lacks.
    let mut office = world.open_admin();
    let mut phone = world.open_mother();
    for (i, doc) in world.doc_ids().iter().enumerate() {
        let Some(theirs) = phone.archive.store().doc(doc).unwrap().map(|d| d.save()) else {
            continue;
        };
        let mine: Vec<automerge::ChangeHash> = office
            .archive
            .store()
            .heads(doc)
            .unwrap_or_default()
            .split(',')
            .filter_map(|h| h.parse().ok())
            .collect();
        let after = phone
            .archive
            .store()
            .doc(doc)
            .unwrap()
            .map(|d| d.save_after(&mine))
            .unwrap_or_default();
        s.put_mode("doc_merge", &format!("doc-{i}-whole"), i as u8, &theirs)?;
        if !after.is_empty() {
            s.put_mode("doc_merge", &format!("doc-{i}-after"), i as u8, &after)?;
        }
    }

    // Bundles: her file for the office (sealed), the plain bundle inside it, and an enrollment.
    let file = phone
        .archive
        .export_bundle(Some(world.admin.id.as_str()), None)
        .unwrap();
    s.put_mode("bundle", "sealed-for-office", 0, &file)?;
    let inside = office.archive.open_bundle(&file).unwrap().encode().unwrap();
    s.put_mode("bundle", "entries", 1, &bundle_payload(&inside).unwrap())?;
    s.put_mode("bundle", "plain", 3, &inside)?;
    // A version 3 file: the same, listing a document held and not sent.
    let mut held = Bundle::decode(&inside).unwrap();
    held.held = vec![Held {
        doc: held.entries[0].doc.clone(),
        changes: held.entries[0].heads.clone(),
    }];
    s.put_mode("bundle", "plain-held", 3, &held.encode().unwrap())?;
    // Mode 4: one held document (the child's private part, a pick of 2) naming one change,
    // then the same entries, from the office to her phone.
    let mut claim = vec![0u8, 2, 1];
    claim.extend_from_slice(
        held.entries[0]
            .heads
            .first()
            .map_or(&[0u8; 32][..], |h| h.as_ref()),
    );
    claim.extend_from_slice(&bundle_payload(&inside).unwrap());
    s.put_mode("bundle", "held-for-mother", 4, &claim)?;
    let device = device_endpoint();
    let enrollment = office
        .archive
        .export_enrollment(
            world.mother.id.as_str(),
            "hub",
            &DeviceKey(*device.as_bytes()),
            "刘桂兰的手机",
        )
        .unwrap();
    s.put_mode(
        "bundle",
        "enrollment",
        2,
        &bundle_payload(&enrollment).unwrap(),
    )?;

    // Handshake: what a hub answers an enrollment and a greeting.
    let cert = world.certificate(DeviceKey(*device.as_bytes()));
    let mut enroll = vec![Message::Certificate(cert.to_bytes()).encode()];
    for chunk in enrollment.chunks(4096) {
        enroll.push(Message::BundleChunk(chunk.to_vec()).encode());
    }
    enroll.push(Message::BundleEnd(enrollment.len() as u64).encode());
    s.put_mode("handshake", "enrollment", 0, &join_frames(&enroll))?;
    let mut welcome = vec![
        Message::Welcome(world.school.clone()).encode(),
        Message::Certificate(cert.to_bytes()).encode(),
    ];
    welcome.extend(from_office.iter().cloned());
    s.put_mode("handshake", "welcome", 1, &join_frames(&welcome))?;
    let refusals = [
        Message::Refused("邀请码无效，请核对或让管理员重新生成".into()).encode(),
        Message::Revoked.encode(),
        Message::Live.encode(),
        Message::Undelivered {
            changes: 3,
            records: 1,
        }
        .encode(),
        Message::Enroll {
            member: world.mother.id.clone(),
            secret: world.invite().secret,
        }
        .encode(),
        Message::Hello(cert.to_bytes()).encode(),
    ];
    s.put_mode("handshake", "refusals", 1, &join_frames(&refusals))?;

    // Membership: an invite and a certificate, as text and as bytes.
    let invite = world.invite();
    s.put_mode(
        "membership",
        "invite-text",
        0,
        invite.encode().unwrap().as_bytes(),
    )?;
    s.put_mode(
        "membership",
        "invite-qr",
        0,
        invite.encode().unwrap().to_uppercase().as_bytes(),
    )?;
    s.put_mode("membership", "invite-bytes", 1, &invite.to_bytes().unwrap())?;
    s.put_mode("membership", "cert-text", 2, cert.encode().as_bytes())?;
    s.put_mode("membership", "cert-bytes", 3, &cert.to_bytes())?;

    // The hub: an enrollment with the open invite, and a welcomed device's whole sync.
    hub_seeds(&mut s)?;

    // Rosters.
    let table = roster_table();
    let csv: String = table.iter().map(|r| r.join(",") + "\r\n").collect();
    s.put("roster_csv", "roster.csv", csv.as_bytes())?;
    s.put(
        "roster_csv",
        "roster-bom.csv",
        format!("\u{feff}{csv}").as_bytes(),
    )?;
    s.put("roster_xlsx", "roster.xlsx", &xlsx(&table))?;
    for (name, bytes) in xlsx_edges(&table) {
        s.put("roster_xlsx", name, &bytes)?;
    }

    Ok(s.count)
}

/// What a device sends the hub: its enrollment, then (with the store it enrolled into and one
/// new 谈心 record) its greeting, `Live` and every sync frame of a real exchange.
fn hub_seeds(s: &mut Seeds<'_>) -> io::Result<()> {
    use shouwang_core::archive::JoinOptions;
    use shouwang_relay::handshake::MAGIC;

    let hub = Hub::get();
    let opened = hub.open();
    let enroll = Message::Enroll {
        member: hub.member.clone(),
        secret: hub.secret.clone(),
    }
    .encode();
    s.put("hub_handshake", "enroll", &join_frames(&[&enroll]))?;
    let reply = Hub::conversation(&opened).on_frame(&enroll).unwrap();
    let mut bundle = Vec::new();
    for f in &reply.frames {
        if let Ok(Message::BundleChunk(b)) = Message::decode(f) {
            bundle.extend_from_slice(&b);
        }
    }
    let dir = tempfile::TempDir::new()?;
    let mut phone = shouwang_core::Archive::join_enrolled(
        &dir.path().join("shouwang.db"),
        &bundle,
        hub.member.as_str(),
        &JoinOptions {
            key: None,
            meta: &[],
            shared_with: Some("hub"),
        },
    )
    .unwrap();
    phone
        .add_record(&shouwang_core::RecordInput {
            kind: "谈心".into(),
            child: Some(shouwang_tests::fixtures::CHILDREN[0].1.into()),
            class: None,
            date: "2026-11-20".into(),
            fields: vec![("notes".into(), "聊了这一周的学习和朋友".into())],
        })
        .unwrap();

    let mut conv = Hub::conversation(&opened);
    let hello = Message::Hello(hub.certificate.to_bytes()).encode();
    let mut sent = vec![hello.clone(), Message::Live.encode()];
    let mut to_phone = conv.on_frame(&hello).unwrap().frames;
    conv.on_frame(&Message::Live.encode()).unwrap();
    let mut session = phone.session("hub", None).unwrap();
    let mut to_hub = session.handle(phone.store(), Event::Start).unwrap().frames;
    for _ in 0..100 {
        if to_hub.is_empty() && to_phone.is_empty() {
            break;
        }
        let mut next_hub = Vec::new();
        for f in to_phone.drain(..) {
            if f.first() != Some(&MAGIC) {
                next_hub.extend(
                    session
                        .handle(phone.store(), Event::Frame(&f))
                        .unwrap()
                        .frames,
                );
            }
        }
        let mut next_phone = Vec::new();
        for f in to_hub.drain(..) {
            next_phone.extend(conv.on_frame(&f).unwrap().frames);
            sent.push(uncompressed_sync_frame(&f));
        }
        to_hub = next_hub;
        to_phone = next_phone;
    }
    s.put("hub_handshake", "welcomed-sync", &join_frames(&sent))?;
    let undelivered = Message::Undelivered {
        changes: 2,
        records: 1,
    }
    .encode();
    s.put(
        "hub_handshake",
        "undelivered",
        &join_frames(&[&undelivered]),
    )?;
    Ok(())
}

fn xlsx(table: &[Vec<String>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in table.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            // Dates and numbers as Excel keeps them, the rest as text.
            if let Ok(n) = cell.parse::<f64>()
                && cell.len() < 15
            {
                ws.write_number(r, c, n).unwrap();
            } else if let Ok(d) = rust_xlsxwriter::ExcelDateTime::parse_from_str(cell)
                && cell.contains('-')
            {
                let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
                ws.write_datetime_with_format(r, c, &d, &format).unwrap();
            } else {
                ws.write_string(r, c, cell).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

/// Rosters at the edges of what a spreadsheet can hold: a date cell whose serial is far past
/// any calendar, and a cell in the sheet's last row and column (a file a person's Excel could
/// save after a stray keystroke).
fn xlsx_edges(table: &[Vec<String>]) -> Vec<(&'static str, Vec<u8>)> {
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let mut far_date = rust_xlsxwriter::Workbook::new();
    let ws = far_date.add_worksheet();
    for (c, h) in table[0].iter().enumerate() {
        ws.write_string(0, c as u16, h).unwrap();
    }
    for (c, v) in table[1].iter().enumerate() {
        ws.write_string(1, c as u16, v).unwrap();
    }
    ws.write_number_with_format(1, 3, 1e20, &date).unwrap();
    let mut far_cell = rust_xlsxwriter::Workbook::new();
    let ws = far_cell.add_worksheet();
    for (c, h) in table[0].iter().enumerate() {
        ws.write_string(0, c as u16, h).unwrap();
    }
    ws.write_string(1_048_575, 16_383, "备注").unwrap();
    vec![
        ("far-date.xlsx", far_date.save_to_buffer().unwrap()),
        ("far-cell.xlsx", far_cell.save_to_buffer().unwrap()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_gets_seeds_from_the_real_code() {
        let dir = tempfile::TempDir::new().unwrap();
        let n = write_all(dir.path()).unwrap();
        assert!(n >= 20, "{n} seeds");
        let targets: Vec<String> =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("path = \"fuzz_targets/"))
                .map(|l| l.trim_end_matches(".rs\"").to_owned())
                .collect();
        assert_eq!(targets.len(), 10, "{targets:?}");
        for t in targets {
            let seeds = std::fs::read_dir(dir.path().join(&t)).map_or(0, |d| d.count());
            assert!(seeds > 0, "no seeds for {t}");
        }
    }
}
