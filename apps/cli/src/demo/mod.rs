//! `shouwang demo`: a realistic sample school (DOMAIN.md §8) and two devices working offline.
//!
//! 郭庄小学 (丁里镇) gets its leadership, an archivist, twelve classes and about 340 children
//! with invented names, imported through the real roster path from a CSV file with the registry
//! columns. Then the 班主任 王瑞侠 (device A) and an 爱心妈妈 (device B) join from bundles,
//! both write records offline and both change the same guardian's phone number, and they
//! exchange bundles both ways. Everything is deterministic except ids and device clocks.

mod people;
mod school;
mod story;

use std::path::{Path, PathBuf};

use shouwang_core::bundle::seal::Passphrase;
use shouwang_core::roles::Role;
use shouwang_core::{Archive, SchoolSetup};

use crate::commands::{Ctx, bundle, children, work};
use crate::error::{CliError, Result, file_error, read_data_file};
use people::{ARCHIVIST, CLASS_A, CLASSES, MOTHER_B, TEACHER_A};
use story::{PHONE_FROM_FATHER, PHONE_FROM_GRANDMOTHER, kv};

/// The day the demo pretends it is.
const TODAY: &str = "2025-11-21";

const SCHOOL_DB: &str = "school.db";
const A_DB: &str = "device-a-wangruixia.db";
const B_DB: &str = "device-b-liuguilan.db";
const FILES: [&str; 4] = [SCHOOL_DB, A_DB, B_DB, "roster.csv"];

/// Where the demo's files go: `dir` (created if needed, must not hold a demo already) or a new
/// temporary directory.
fn prepare_dir(dir: Option<&Path>) -> Result<PathBuf> {
    match dir {
        Some(d) => {
            for f in FILES {
                if d.join(f).exists() {
                    return Err(CliError::msg(format!(
                        "目录中已有演示数据（{}），请换一个空目录",
                        d.join(f).display()
                    )));
                }
            }
            std::fs::create_dir_all(d).map_err(|e| file_error("演示目录", d, &e))?;
            Ok(d.to_path_buf())
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let name = format!("shouwang-demo-{}-{nanos}", std::process::id());
            let d = std::env::temp_dir().join(name);
            std::fs::create_dir(&d).map_err(|e| file_error("演示目录", &d, &e))?;
            Ok(d)
        }
    }
}

fn heading(ctx: &mut Ctx, s: &str) -> Result<()> {
    ctx.line("")?;
    ctx.line(format!("══ {s} ══"))
}

/// Exports a bundle for `member` from `from` and sets up a new device at `store` with it.
fn new_device(
    from: &mut Archive,
    dir: &Path,
    store: &Path,
    member: &str,
) -> Result<(Archive, usize)> {
    let file = dir.join(format!(
        "school-to-{}.swb",
        if member == TEACHER_A { "a" } else { "b" }
    ));
    let added = bundle::export_new_device(from, &file, member, &format!("{member}的手机"))?;
    let bytes = read_data_file("数据文件", &file)?;
    let passphrase = Passphrase::parse(&added.passphrase)?;
    let device = Archive::join(store, &bytes, &passphrase, member)?;
    Ok((device, added.exported.children))
}

pub fn run(ctx: &mut Ctx, dir: Option<&Path>) -> Result<()> {
    let dir = prepare_dir(dir)?;
    let school_db = dir.join(SCHOOL_DB);
    let a_db = dir.join(A_DB);

    ctx.line("守望演示：一所示范学校和两台离线设备（学生、家长姓名及号码均为虚构）")?;
    heading(ctx, "1. 学校办公室电脑：建立郭庄小学的档案库")?;
    let mut admin = Archive::create_school(
        &school_db,
        &SchoolSetup {
            name: "郭庄小学".into(),
            town: "丁里镇".into(),
            hotline: Some("0564-4552466".into()),
            admin_name: ARCHIVIST.into(),
            admin_role: Role::Archivist,
            device_label: "学校办公室电脑".into(),
        },
    )?;
    let kids = school::build(ctx, &dir, &mut admin)?;
    let in_class = |ci: usize| kids.iter().filter(move |k| k.class == CLASSES[ci]);
    // X: the child both devices write about; Y: another child of A's class; Z: another child
    // paired with B.
    let (Some(x), Some(y), Some(z)) = (
        in_class(CLASS_A).next(),
        in_class(CLASS_A).nth(5),
        in_class(CLASS_A + 1).next(),
    ) else {
        return Err(CliError::msg("演示数据生成有误"));
    };
    // Devices that do not see the private part cannot look children up by 学籍号: use ids.
    let x_id = admin.find_child(&x.student_no)?.0;
    let y_id = admin.find_child(&y.student_no)?.0;
    let z_id = admin.find_child(&z.student_no)?.0;
    // The story needs X to live with the grandmother while both parents work away.
    let edits: [(&str, &[(&str, &str)]); 4] = [
        (
            "profile",
            &[("parents_away", "父母均外出"), ("lives_with", "奶奶")],
        ),
        (
            "guardian",
            &[
                ("relation", "奶奶"),
                ("age", "67"),
                ("health", "高血压，腿脚不便"),
            ],
        ),
        (
            "father",
            &[("work_place", "江苏省昆山市"), ("employer", "昆山某电子厂")],
        ),
        (
            "mother",
            &[("work_place", "江苏省昆山市"), ("employer", "昆山某电子厂")],
        ),
    ];
    for (section, fields) in edits {
        admin.edit_child(&x_id, section, &kv(fields))?;
    }

    heading(ctx, "2. 两台设备从数据文件加入")?;
    let (mut dev_a, n) = new_device(&mut admin, &dir, &a_db, TEACHER_A)?;
    ctx.line(format!(
        "设备A：班主任{TEACHER_A}（{}），收到 {n} 份学生档案",
        CLASSES[CLASS_A]
    ))?;
    let (mut dev_b, n) = new_device(&mut admin, &dir, &dir.join(B_DB), MOTHER_B)?;
    ctx.line(format!(
        "设备B：爱心妈妈{MOTHER_B}，收到结对的 {n} 名学生的档案"
    ))?;
    // Device A joined before B was registered: the office's next file for A tells it of B, so
    // A can seal files to B and check B's signature.
    let news = dir.join("school-to-a-news.swb");
    bundle::export_to(
        &mut admin,
        &news,
        &bundle::Whom::Member(TEACHER_A.to_owned()),
        None,
    )?;
    bundle::import_from(&mut dev_a, &news)?;
    ctx.line("设备A导入办公室的更新文件，得知设备B已登记")?;
    drop(admin);

    heading(ctx, "3. 两台设备各自离线填写记录")?;
    story::write_a(&mut dev_a, &x_id, &y_id)?;
    ctx.line(format!(
        "设备A（{TEACHER_A}）：{x} 家访、与父亲电话记录、谈心；{y} 谈心；把 {x} 监护人的电话改为 {PHONE_FROM_FATHER}（孩子父亲告知）",
        x = x.name,
        y = y.name,
    ))?;
    story::write_b(&mut dev_b, &x_id, &z_id)?;
    ctx.line(format!(
        "设备B（{MOTHER_B}）：{x} 每周谈心、家访；{z} 每周谈心；把 {x} 监护人的电话改为 {PHONE_FROM_GRANDMOTHER}（奶奶当面告知）",
        x = x.name,
        z = z.name,
    ))?;

    heading(ctx, "4. 再见面时，互相交换数据文件")?;
    let a_to_b = dir.join("a-to-b.swb");
    let b_to_a = dir.join("b-to-a.swb");
    bundle::export_to(
        &mut dev_a,
        &a_to_b,
        &bundle::Whom::Member(MOTHER_B.to_owned()),
        None,
    )?;
    bundle::export_to(
        &mut dev_b,
        &b_to_a,
        &bundle::Whom::Member(TEACHER_A.to_owned()),
        None,
    )?;
    let steps = [
        ("设备B导入设备A的文件：", &mut dev_b, &a_to_b),
        ("设备A导入设备B的文件：", &mut dev_a, &b_to_a),
    ];
    for (title, device, file) in steps {
        ctx.line(title)?;
        let report = bundle::import_from(device, file)?;
        ctx.text(bundle::render_import(&report))?;
    }
    ctx.line("设备A再次导入同一个文件：")?;
    let report = bundle::import_from(&mut dev_a, &b_to_a)?;
    ctx.text(bundle::render_import(&report))?;

    heading(ctx, &format!("5. 设备A上合并后的档案：{}", x.name))?;
    let file = dev_a.child_file(&x_id)?;
    let school = dev_a.school()?;
    ctx.text(children::render_file(&file, &school))?;

    heading(ctx, "6. 未解决的冲突")?;
    ctx.text(children::render_conflicts(&file, &x.name))?;

    heading(ctx, &format!("7. 班主任{TEACHER_A}截至 {TODAY} 的待办"))?;
    let today = shouwang_core::dates::parse_date("日期", TODAY)?;
    let items = dev_a.due(None, today, false)?;
    // The whole list has two lines per child; show the teacher's own and X's, and a few more.
    let about_x = |i: &&shouwang_core::due::DueItem| {
        i.child.is_none() || i.child_name.as_deref() == Some(x.name.as_str())
    };
    let shown: Vec<_> = items
        .iter()
        .filter(about_x)
        .chain(items.iter().filter(|i| !about_x(i)).take(6))
        .cloned()
        .collect();
    ctx.text(work::due_table(&shown).render())?;
    if items.len() > shown.len() {
        ctx.line(format!("……共 {} 项，这里只列出一部分。", items.len()))?;
    }
    ctx.text(work::due_summary(&items))?;

    heading(ctx, "接下来可以试试")?;
    let a = a_db.display();
    ctx.line(format!("  shouwang --store {a} child show {}", x.name))?;
    ctx.line(format!(
        "  shouwang --store {a} resolve {} guardian.phone --pick 2",
        x.name
    ))?;
    ctx.line(format!("  shouwang --store {a} due --date {TODAY}"))?;
    ctx.line(format!(
        "  shouwang --store {a} bundle export --out 王老师.swb        # 只含{TEACHER_A}可以看到的档案"
    ))?;
    ctx.line(format!(
        "  shouwang --store {} bundle export --all --out 全校.swb   # 全校导出只限领导组或档案管理员",
        school_db.display()
    ))?;
    ctx.line(format!(
        "  shouwang --store {} children --class '{}'",
        school_db.display(),
        CLASSES[0]
    ))?;
    ctx.line(format!("演示数据在：{}", dir.display()))
}
