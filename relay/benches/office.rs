#![allow(clippy::unwrap_used, clippy::expect_used)]
//! How long the office console's pages take for a school of 2,000 children (issue 13: ≤ 300 ms;
//! a benchmark, never asserted in a test).
//!
//! The real `shouwang-relay serve` (this bench's build) in its own process on 127.0.0.1, over a
//! school of `OFFICE_CHILDREN` children (default 2,000) in 40 classes, each with its 班主任,
//! 100 爱心妈妈 paired with 5 children each, and `OFFICE_RECORDS` care records (default 1,000).
//! An administrator logs in over HTTP; each page is fetched `OFFICE_RUNS` times (default 5)
//! and the median and the slowest are printed as a markdown table for BENCHMARKS.md. The time
//! is the whole request from another process: connect, render, transfer.
//!
//! Run: `cargo bench -p shouwang-relay --bench office` (release), or with `--profile dev` for
//! the figures of a debug build (an upper bound). `OFFICE_ONLY=registry` times only the pages
//! whose path contains `registry`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_core::{Archive, RecordInput, SchoolSetup};
use shouwang_relay::server::{DataDir, adopt_archive};
use shouwang_tests::figures::env_usize;
use shouwang_tests::http::Client;
use shouwang_tests::hub_process::{HubPorts, HubProcess};
use shouwang_tests::roster::{self, ChildRow, Column};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");
const PASSWORD: &str = "郭庄小学2026办公室";
const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "吴", "徐", "胡", "朱", "高",
];
const GIVEN: [&str; 12] = [
    "梓", "一", "思", "佳", "俊", "语", "明", "诗", "宇", "可", "博", "若",
];
const LAST: [&str; 20] = [
    "轩", "诺", "远", "怡", "杰", "桐", "涵", "琪", "航", "馨", "文", "曦", "然", "悦", "晨", "欣",
    "宁", "安", "乐", "阳",
];

/// The `i`-th invented child's name (distinct for `i` < 2,880).
fn name(i: usize) -> String {
    format!(
        "{}{}{}",
        SURNAMES[i % 12],
        GIVEN[(i / 12) % 12],
        LAST[(i / 144) % 20]
    )
}

/// The school, built in an office archive and adopted by a hub data directory.
fn build(dir: &Path, children: usize, records: usize) -> DataDir {
    let started = Instant::now();
    let mut a = Archive::create_school(
        &dir.join("office.db"),
        &SchoolSetup::sample("校长办公室电脑"),
    )
    .unwrap();
    let classes = 40;
    for c in 0..classes {
        let head = format!("班主任{c:02}");
        a.add_member(&head, &[Role::HeadTeacher], None, None)
            .unwrap();
        a.add_class(&format!("{}年级({})班", 1 + c / 7, 1 + c % 7), Some(&head))
            .unwrap();
    }
    let columns = [
        Column::StudentNo,
        Column::Name,
        Column::Sex,
        Column::BirthDate,
        Column::Class,
        Column::Guardian,
        Column::GuardianPhone,
        Column::ParentsAway,
    ];
    let rows = (0..children).map(|i| {
        let c = i % classes;
        ChildRow {
            sex: if i % 2 == 0 { "女" } else { "男" }.into(),
            birth_date: "2016-05-01".into(),
            guardian: "王秀英".into(),
            guardian_phone: format!("139{:08}", i),
            parents_away: ["父母", "父亲", "母亲"][i % 3].into(),
            ..ChildRow::new(
                format!("G3403212016{i:05}"),
                name(i),
                format!("{}年级({})班", 1 + c / 7, 1 + c % 7),
            )
        }
    });
    let table = roster::table(&columns, rows);
    a.import_roster(&parse_table(&table).unwrap()).unwrap();
    let ids: Vec<String> = a
        .children(None, false)
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    for m in 0..100 {
        let mother = format!("爱心妈妈{m:03}");
        a.add_member(&mother, &[Role::LoveMother], None, None)
            .unwrap();
        for k in 0..5 {
            if let Some(child) = ids.get(m * 5 + k) {
                a.pair(&mother, child, None).unwrap();
            }
        }
    }
    for r in 0..records {
        a.add_record(&RecordInput {
            kind: ["家访", "谈心", "电话记录"][r % 3].into(),
            child: Some(ids[r % ids.len()].clone()),
            class: None,
            date: format!("2026-11-{:02}", 1 + r % 28),
            fields: {
                let mut f = vec![(
                    "notes".into(),
                    format!("第{r}次：奶奶身体还好，作业按时完成"),
                )];
                if r % 3 == 2 {
                    f.push(("with_whom".into(), "父亲".into()));
                }
                f
            },
        })
        .unwrap();
    }
    let data = DataDir::new(dir.join("hub"));
    adopt_archive(&data, &mut a).unwrap();
    eprintln!(
        "school of {children} children, {records} records built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    data
}

fn main() {
    let children = env_usize("OFFICE_CHILDREN", 2000);
    let records = env_usize("OFFICE_RECORDS", 1000);
    let runs = env_usize("OFFICE_RUNS", 5).max(1);
    let dir = tempfile::tempdir().unwrap();
    let data = build(dir.path(), children, records);
    let ports = HubPorts::write(dir.path(), &data, "");
    let _hub = HubProcess::start(Path::new(BIN), &ports, &dir.path().join("hub.log"));
    let mut set = Command::new(BIN)
        .arg("--config")
        .arg(&ports.config)
        .args(["office-password", "--member", "张长友"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(set.wait().unwrap().success());
    let mut web = Client::new(ports.http);
    assert_eq!(web.login("张长友", PASSWORD).status, 303);
    let child = {
        let mut a = data.open_archive().unwrap();
        a.children(None, false).unwrap()[children / 2]
            .id
            .to_string()
    };
    let pages = [
        ("概览", "/".to_owned()),
        ("学生", "/students".to_owned()),
        ("学生（筛选）", "/students?flag=&away=both&q=王".to_owned()),
        ("一名学生的档案", format!("/students/{child}")),
        ("冲突", "/conflicts".to_owned()),
        ("成员与设备", "/members".to_owned()),
        ("报表：汇总表", "/reports/summary".to_owned()),
        ("报表：基本情况登记表", "/reports/registry".to_owned()),
        ("报表：月统计", "/reports/contacts?month=2026-11".to_owned()),
    ];
    println!("| page ({children} children, {records} records) | median | slowest | bytes |");
    println!("|---|---|---|---|");
    // `OFFICE_ONLY=registry`: only the pages whose path contains it (for profiling one).
    let only = std::env::var("OFFICE_ONLY").unwrap_or_default();
    for (label, path) in pages.into_iter().filter(|(_, p)| p.contains(&only)) {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = web.get(&path);
            times.push(t.elapsed());
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            bytes = r.body.len();
        }
        times.sort();
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {label} `{path}` | {} | {} | {bytes} |",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }
}
