//! The office console on the real `shouwang-relay serve`, driven over HTTP from another
//! process as a browser would (cookies, forms, CSRF tokens), and one page loaded in a real
//! headless Chromium.
//!
//! The school is `common::office`'s: 郭庄小学 with two classes and an open conflict, adopted
//! by the hub from the office's archive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::office::{BIN, Hub, OTHER_CHILD, OTHER_CLASS, OTHER_HEAD, PASSWORD, logged_in};
use shouwang_core::Archive;
use shouwang_core::roles::Role;
use shouwang_tests::chromium::{Chromium, find_chromium, read_qr};
use shouwang_tests::fixtures::{CHILDREN, CLASS, HEAD_TEACHER};
use shouwang_tests::http::{Client, form, hidden, percent_encode};
use shouwang_tests::phone::id_number;

/// The access-log entries written since `before` (entries sort by second, so new ones are
/// found by device and sequence number, not by position).
fn new_entries(
    a: &mut Archive,
    before: &[shouwang_core::archive::AuditEntry],
) -> Vec<shouwang_core::archive::AuditEntry> {
    let log = a.audit_log().unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    let mut new: Vec<_> = log
        .entries
        .into_iter()
        .filter(|e| {
            !before
                .iter()
                .any(|b| b.device == e.device && b.seq == e.seq)
        })
        .collect();
    new.sort_by_key(|e| (e.device.clone(), e.seq));
    new
}

#[test]
fn login_refuses_wrong_passwords_locks_out_and_checks_csrf() {
    let hub = Hub::start();
    let mut web = hub.browser();
    // No session: every page sends to the login page.
    let r = web.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(web.get("/students").status, 303);

    // Passwords are set with the CLI; a 爱心妈妈 cannot log in, a short password is refused.
    let (ok, out) = hub.set_password("刘桂兰", PASSWORD);
    assert!(!ok, "{out}");
    assert!(out.contains("不能登录办公室网页"), "{out}");
    let (ok, out) = hub.set_password("张长友", "short");
    assert!(!ok && out.contains("至少 8 个字符"), "{out}");
    // Nor one a script's list tries first (`guessable`).
    for guessable in ["12345678", "88888888", "woaini1314", "20150305"] {
        let (ok, out) = hub.set_password("张长友", guessable);
        assert!(!ok && out.contains("猜到"), "{guessable}: {out}");
    }
    let (ok, out) = hub.set_password("张长友", PASSWORD);
    assert!(ok, "{out}");
    assert!(out.contains("已设置 张长友"), "{out}");
    let (ok, out) = hub.set_password(HEAD_TEACHER, PASSWORD);
    assert!(ok, "{out}");

    // A login form without its CSRF cookie is refused.
    let mut stranger = hub.browser();
    let r = stranger.post(
        "/login",
        &[("name", "张长友"), ("password", PASSWORD), ("csrf", "x")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!stranger.cookies.contains_key("sw_session"));

    // A wrong password.
    let r = web.login("张长友", "not the password");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("姓名或密码不对"));
    assert!(!web.cookies.contains_key("sw_session"));
    let r = web.login("没有这个人", PASSWORD);
    assert_eq!(r.status, 401);

    // The right one: a session cookie that scripts cannot read and other sites cannot send.
    let r = web.login("张长友", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sw_session="))
        .unwrap()
        .to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let page = web.get("/");
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("概览") && text.contains(CLASS) && text.contains(OTHER_CLASS));
    assert!(text.contains("<svg"), "the compliance chart is inline SVG");

    // Behind TLS (a proxy says so), the cookie is Secure, and `__Host-` (a browser takes such
    // a cookie only from a secure origin: someone answering plain HTTP to the hub's address
    // cannot plant one).
    let mut tls = hub.browser();
    let page = tls.request("GET", "/login", None, "X-Forwarded-Proto: https\r\n");
    let token = hidden(&page.text(), "csrf");
    let r = tls.request(
        "POST",
        "/login",
        Some(&form(&[
            ("name", "张长友"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])),
        "X-Forwarded-Proto: https\r\n",
    );
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-sw_session=") && c.contains("; Secure")),
        "{:?}",
        r.headers
    );
    assert_eq!(
        tls.request("GET", "/", None, "X-Forwarded-Proto: https\r\n")
            .status,
        200
    );
    // A plain-named session cookie (planted by someone answering plain HTTP, here the one of
    // the plain login above) is not taken over TLS.
    let planted = session.split(';').next().unwrap().to_owned();
    let mut fresh = hub.browser();
    let r = fresh.request(
        "GET",
        "/",
        None,
        &format!("X-Forwarded-Proto: https\r\nCookie: {planted}\r\n"),
    );
    assert_eq!(r.status, 303, "a planted plain cookie was taken over TLS");
    let r = fresh.request("GET", "/", None, &format!("Cookie: {planted}\r\n"));
    assert_eq!(r.status, 200, "the same cookie over plain HTTP");

    // A form without the session's CSRF token changes nothing.
    let r = web.post(
        "/members/invite",
        &[("csrf", "forged"), ("member", "陈华"), ("role", "班主任")],
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("没有做任何改动"), "{}", r.text());
    assert!(hub.archive().find_member("陈华").is_err());
    let r = web.post("/logout", &[("csrf", "forged")]);
    assert_eq!(r.status, 403);
    assert_eq!(web.get("/").status, 200, "still logged in");

    // Five failures lock that name from this address, even for the right password; another
    // name is not locked.
    let mut attacker = hub.browser();
    for _ in 0..5 {
        assert_eq!(attacker.login(HEAD_TEACHER, "guess").status, 401);
    }
    let r = attacker.login(HEAD_TEACHER, PASSWORD);
    assert_eq!(r.status, 429);
    assert!(r.text().contains("锁定"), "{}", r.text());
    assert!(!attacker.cookies.contains_key("sw_session"));
    assert_eq!(attacker.login("张长友", PASSWORD).status, 303);

    // Logging out ends the session.
    let token = web.csrf();
    assert_eq!(web.post("/logout", &[("csrf", &token)]).status, 303);
    assert_eq!(web.get("/").status, 303);
}

/// Someone on the school's network fails logins in the 校长's name until she is locked out
/// (here every browser shares 127.0.0.1, as computers behind one proxy or NAT do): the
/// browser she logged in from before still logs her in, with a long-lived cookie that scripts
/// cannot read, even after the 班主任 logged in on the same computer; a browser without it
/// stays locked out.
#[test]
fn the_browser_she_logged_in_from_is_not_locked_out_by_someone_else() {
    let hub = Hub::start();
    assert!(hub.set_password("张长友", PASSWORD).0);
    assert!(hub.set_password(HEAD_TEACHER, PASSWORD).0);
    let mut hers = hub.browser();
    let r = hers.login("张长友", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let browser = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sw_browser_"))
        .expect("her browser is remembered")
        .to_owned();
    assert!(
        browser.contains("HttpOnly")
            && browser.contains("SameSite=Strict")
            && browser.contains("Max-Age="),
        "{browser}"
    );
    let token = hers.csrf();
    assert_eq!(hers.post("/logout", &[("csrf", &token)]).status, 303);
    // The 班主任 uses the same computer: the browser is remembered for him too, and still
    // for her.
    assert_eq!(hers.login(HEAD_TEACHER, PASSWORD).status, 303);
    let token = hers.csrf();
    assert_eq!(hers.post("/logout", &[("csrf", &token)]).status, 303);

    let mut attacker = hub.browser();
    for _ in 0..5 {
        assert_eq!(attacker.login("张长友", "guess").status, 401);
    }
    assert_eq!(hub.browser().login("张长友", PASSWORD).status, 429);
    assert_eq!(hers.login("张长友", PASSWORD).status, 303);
    assert_eq!(hers.get("/").status, 200);
}

#[test]
fn a_head_teacher_sees_only_his_class_and_opening_the_private_part_is_logged() {
    let hub = Hub::start();
    assert!(hub.set_password(HEAD_TEACHER, PASSWORD).0);
    let mut web = hub.browser();
    assert_eq!(web.login(HEAD_TEACHER, PASSWORD).status, 303);
    let mut a = hub.archive();
    let me = a.find_member(HEAD_TEACHER).unwrap().id;
    let child = a.find_child(CHILDREN[0].1).unwrap();
    let other = a.find_child(OTHER_CHILD).unwrap();

    let list = web.get("/students").text();
    for (_, name) in CHILDREN {
        assert!(list.contains(name), "{name} missing: {list}");
    }
    // A child's name typed into the search is not kept in the browser's form history (an
    // office computer others use).
    assert!(
        list.contains("name=\"q\" value=\"\" autocomplete=\"off\""),
        "{list}"
    );
    assert!(!list.contains(OTHER_CHILD), "{list}");
    let overview = web.get("/").text();
    assert!(overview.contains(CLASS) && !overview.contains(OTHER_CLASS));
    // Another class's child, the members and the reports: refused on the server. Another
    // class's child is answered exactly as a child who does not exist, by id or by name, so
    // the console does not tell a 班主任 who else is at the school.
    let nobody = |web: &mut Client, path: &str, key: &str| {
        let r = if path.ends_with("/reveal") {
            let token = web.csrf();
            web.post(path, &[("csrf", &token), ("why", "核对学籍")])
        } else if let Some(child) = path.strip_prefix("/conflicts/resolve?child=") {
            let token = web.csrf();
            web.post(
                "/conflicts/resolve",
                &[
                    ("csrf", &token),
                    ("child", child),
                    ("path", "guardian.phone"),
                    ("value", "13700001234"),
                ],
            )
        } else {
            web.get(path)
        };
        (r.status, r.text().replace(key, "<key>"))
    };
    let absent = "c-0000000000000000";
    for (path, key) in [
        (format!("/students/{}", other.as_str()), other.as_str()),
        (
            format!("/students/{}", percent_encode(OTHER_CHILD)),
            OTHER_CHILD,
        ),
        (format!("/print/{}", other.as_str()), other.as_str()),
        (
            format!("/students/{}/reveal", other.as_str()),
            other.as_str(),
        ),
        (
            format!("/conflicts/resolve?child={OTHER_CHILD}"),
            OTHER_CHILD,
        ),
    ] {
        let missing = path
            .replace(&percent_encode(key), absent)
            .replace(key, absent);
        let (status, text) = nobody(&mut web, &path, key);
        assert_eq!(status, 404, "{path}: {text}");
        assert!(!text.contains(&id_number("101")) && !text.contains(OTHER_CHILD));
        assert_eq!(
            (status, text),
            nobody(&mut web, &missing, absent),
            "{path} answers as a child who does not exist"
        );
    }
    assert_eq!(web.get("/members").status, 403);
    assert_eq!(web.get("/reports/registry").status, 403);
    assert!(
        web.get("/reports")
            .text()
            .contains("需要校长/领导组或档案管理员")
    );

    // His child's file: the ID number masked, and the opening of the private part logged.
    let before = a.audit_log().unwrap().entries;
    let r = web.get(&format!("/students/{}", child.as_str()));
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.contains("身份信息") && page.contains("13800001111"));
    assert!(!page.contains(&id_number("001")), "the ID is masked");
    let opened = new_entries(&mut a, &before);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].what, "private_view");
    assert_eq!(opened[0].member, me.as_str());
    assert_eq!(opened[0].target, child.as_str());

    // The ID in full needs a reason (refused without, nothing logged), then is logged first.
    let token = hidden(&page, "csrf");
    let path = format!("/students/{}/reveal", child.as_str());
    let r = web.post(&path, &[("csrf", &token), ("why", " ")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("原因"));
    let r = web.post(&path, &[("csrf", "forged"), ("why", "核对学籍")]);
    assert_eq!(r.status, 403);
    assert_eq!(new_entries(&mut a, &before).len(), 1);
    let r = web.post(&path, &[("csrf", &token), ("why", "核对学籍")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&id_number("001")));
    let new = new_entries(&mut a, &before);
    assert_eq!(new.len(), 2, "{new:?}");
    let last = &new[1];
    assert_eq!(last.what, "id_reveal");
    assert_eq!(last.member, me.as_str());
    assert_eq!(last.target, child.as_str());
    assert_eq!(last.why.as_deref(), Some("核对学籍"));
    assert_eq!(
        last.device,
        a.device().as_str(),
        "the hub's device showed it"
    );
}

#[test]
fn an_administrator_resolves_a_conflict_invites_a_teacher_and_downloads_reports() {
    use calamine::{Data, Reader, Xlsx};

    let hub = Hub::start();
    assert!(hub.set_password("晁月静", PASSWORD).0);
    let mut web = hub.browser();
    assert_eq!(web.login("晁月静", PASSWORD).status, 303);

    // 冲突: listed with both values; a bad pick changes nothing; a good one resolves it.
    let page = web.get("/conflicts").text();
    assert!(
        page.contains("13800001111") && page.contains("13900002222"),
        "{page}"
    );
    let token = hidden(&page, "csrf");
    let child = hidden(&page, "child");
    let r = web.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", &child),
            ("path", "guardian.phone"),
            ("pick", "9"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("请填1到2之间的数字"), "{}", r.text());
    assert_eq!(hub.archive().child_file(&child).unwrap().conflicts.len(), 1);
    let r = web.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", &child),
            ("path", "guardian.phone"),
            ("value", "13700003333"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let file = hub.archive().child_file(&child).unwrap();
    assert!(file.conflicts.is_empty());
    let guardian = file.sections.iter().find(|s| s.key == "guardian").unwrap();
    assert!(guardian.fields.iter().any(|f| f.value == "13700003333"));

    // 成员与设备: an invite for a new 班主任, with its QR code drawn inline.
    let page = web.get("/members").text();
    assert!(page.contains(HEAD_TEACHER) && page.contains("最近同步"));
    let r = web.post(
        "/members/invite",
        &[
            ("csrf", &token),
            ("member", "陈华"),
            ("role", "班主任"),
            ("days", "abc"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(hub.archive().find_member("陈华").is_err());
    let r = web.post(
        "/members/invite",
        &[
            ("csrf", &token),
            ("member", "陈华"),
            ("role", "班主任"),
            ("days", "3"),
        ],
    );
    // Every invite asks for her password again (the device outlives the session).
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(hub.archive().find_member("陈华").is_err(), "nothing done");
    let r = web.post(
        "/members/invite",
        &[
            ("csrf", &token),
            ("member", "陈华"),
            ("role", "班主任"),
            ("days", "3"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(
        page.contains("<svg") && page.contains("已把 陈华"),
        "{page}"
    );
    let start = page.find("shouwang1").unwrap();
    let ticket: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let invite = shouwang_core::membership::Invite::decode(&ticket).unwrap();
    assert_eq!(invite.role, Role::HeadTeacher);
    assert!(hub.archive().find_member("陈华").is_ok());
    // Who issued it is in the access log, where it cannot be changed: whoever scans the code
    // writes and reads as 陈华 from then on.
    let log = web.get("/audit?member=晁月静").text();
    assert!(
        log.contains("发放设备邀请码") && log.contains("陈华") && log.contains("3 天内有效"),
        "{log}"
    );
    let mut a = hub.archive();
    let chen = a.find_member("陈华").unwrap().id;
    let invites = |a: &mut Archive, id: &str| {
        a.audit_log()
            .unwrap()
            .entries
            .into_iter()
            .filter(|e| e.what == "invite" && e.target == id)
            .count()
    };
    assert_eq!(invites(&mut a, chen.as_str()), 1, "logged once");
    // So is one issued at the server's command line, by the hub itself.
    let before = a.audit_log().unwrap().entries;
    let (ok, out) = hub.ports.command(
        BIN.as_ref(),
        &[
            "invite",
            "--role",
            "爱心妈妈",
            "--member",
            "刘桂兰",
            "--days",
            "5",
        ],
    );
    assert!(ok, "{out}");
    let issued = new_entries(&mut a, &before);
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0].what, "invite");
    assert_eq!(
        issued[0].target,
        a.find_member("刘桂兰").unwrap().id.as_str()
    );
    assert_eq!(issued[0].why.as_deref(), Some("爱心妈妈，5 天内有效"));
    assert_eq!(issued[0].device, a.device().as_str(), "the hub issued it");
    // Not for years: while an invite is open, strangers get past the gate, and its ticket
    // enrolls whoever holds it. Refused as the console refuses it, and no member is added.
    let before = a.audit_log().unwrap().entries;
    let (ok, out) = hub.ports.command(
        BIN.as_ref(),
        &[
            "invite",
            "--role",
            "爱心妈妈",
            "--member",
            "周红梅",
            "--days",
            "3650",
        ],
    );
    assert!(!ok && out.contains("1 到 90"), "{out}");
    assert!(new_entries(&mut a, &before).is_empty());
    assert!(a.find_member("周红梅").is_err());

    // Members, classes and pairings, through the core's paths; bad input changes nothing.
    let r = web.post(
        "/members/add",
        &[
            ("csrf", &token),
            ("name", "朱安喜"),
            ("role", "班主任"),
            ("phone", "12"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("电话"), "{}", r.text());
    assert!(hub.archive().find_member("朱安喜").is_err());
    let r = web.post(
        "/members/add",
        &[
            ("csrf", &token),
            ("name", "朱安喜"),
            ("role", "班主任"),
            ("phone", "13805640002"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = web.post(
        "/members/class",
        &[
            ("csrf", &token),
            ("name", "五年级(1)班"),
            ("head", "朱安喜"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = web.post(
        "/members/pair",
        &[
            ("csrf", &token),
            ("carer", "朱安喜"),
            ("child", OTHER_CHILD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        web.get("/members?done=pair")
            .text()
            .contains("已建立结对帮扶")
    );
    let school = hub.archive().school().unwrap();
    let zhu = school.members.iter().find(|m| m.name == "朱安喜").unwrap();
    assert!(
        school
            .classes
            .iter()
            .any(|c| c.name == "五年级(1)班" && c.head_teacher.as_ref() == Some(&zhu.id))
    );
    assert!(
        school
            .pairings
            .iter()
            .any(|p| p.carer == zhu.id && p.active)
    );
    let r = web.post(
        "/members/class",
        &[("csrf", &token), ("name", "五年级(1)班")],
    );
    assert_eq!(r.status, 403, "a class that exists: {}", r.text());

    // The print view: the file on A4, no forms.
    let r = web.get(&format!("/print/{child}"));
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        page.contains("class=\"print\"") && page.contains("留守儿童档案"),
        "{page}"
    );
    assert!(!page.contains("<form"), "{page}");

    // 报表: each download parses and matches the archive cell by cell.
    let mut a = hub.archive();
    let before = a.audit_log().unwrap().entries;
    let r = web.get("/reports/registry");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let mut book = Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Float(f) => f.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    assert!(rows[0][0].contains("留守儿童基本情况登记表"));
    assert_eq!(&rows[1][..4], ["序号", "学籍号", "姓名", "性别"]);
    let children = a.children(None, false).unwrap();
    assert_eq!(rows.len(), 2 + children.len());
    for (row, c) in rows[2..].iter().zip(&children) {
        let file = a.child_file(c.id.as_str()).unwrap();
        let id = file
            .sections
            .iter()
            .find(|s| s.key == "identity")
            .and_then(|s| s.fields.iter().find(|f| f.key == "id_card"))
            .map(|f| f.value.clone())
            .unwrap_or_default();
        assert_eq!(row[2], c.name);
        assert_eq!(row[5], c.class_name.clone().unwrap_or_default());
        assert_eq!(row[6], id, "masked as the file shows it");
    }
    let text = rows.concat().join(" ");
    assert!(!text.contains(&id_number("001")) && !text.contains(&id_number("101")));
    assert!(text.contains(OTHER_CHILD));
    let new = new_entries(&mut a, &before);
    assert_eq!(new.len(), 1, "{new:?}");
    let last = &new[0];
    assert_eq!(last.what, "report");
    assert_eq!(last.member, a.find_member("晁月静").unwrap().id.as_str());
    assert!(last.target.contains("基本情况登记表"), "{}", last.target);

    let r = web.get("/reports/summary");
    let mut book = Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let total = sheet.rows().next_back().unwrap().to_vec();
    assert_eq!(total[1].to_string(), "合计");
    assert_eq!(total[3], Data::Float(children.len() as f64));
    let r = web.get("/reports/sante");
    let mut book = Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows.len(), 3, "one 特困生");
    assert_eq!(rows[2][1].to_string(), CHILDREN[1].1);
    assert_eq!(rows[2][4].to_string(), "是");
    let r = web.get("/reports/contacts?month=2026-13");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("不是有效的月份"), "{}", r.text());
    assert_eq!(web.get("/reports/contacts?month=2026-11").status, 200);
    assert_eq!(web.get("/reports/pairings").status, 200);
    // One child's 六项基本档案, linked from the child's page.
    let page = web.get(&format!("/students/{child}")).text();
    assert!(
        page.contains(&format!("/reports/child?child={child}")),
        "{page}"
    );
    let r = web.get(&format!("/reports/child?child={child}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut book = Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    assert_eq!(book.sheet_names().len(), 6);
    let basic = book.worksheet_range_at(0).unwrap().unwrap();
    assert!(
        basic
            .rows()
            .any(|r| r[0] == "基本情况·姓名" && r[1] == CHILDREN[0].1)
    );
}

/// The console in a real browser: Debian's Chromium, headless, logs in through the login form
/// (cookies, CSRF token and all), sees 概览 with its chart and 学生, and screenshots are
/// saved under the target directory. Chromium missing is a failure, never a skip.
#[test]
fn the_console_works_in_headless_chromium() {
    let chromium = find_chromium();
    // 郭庄小学 as DOMAIN.md counts it (002-1: 340 left-behind children).
    let hub = Hub::start_with(335);
    assert_eq!(hub.archive().children(None, false).unwrap().len(), 340);
    assert!(hub.set_password("张长友", PASSWORD).0);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("office-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let mut browser = Chromium::start(&chromium);
    // No session: the console sends the browser to the login form.
    let page = browser.open(&hub.url("/"), "/login");
    assert!(
        page.contains("办公室登录") && page.contains("type=\"password\""),
        "{page}"
    );
    browser.screenshot(&shots.join("login.png"));
    // A wrong password, typed into the form.
    let fill = |name: &str, password: &str| {
        format!(
            "document.querySelector('input[name=name]').value = {}; document.querySelector('input[name=password]').value = {}; document.querySelector('form.login').submit(); true",
            serde_json::Value::String(name.into()),
            serde_json::Value::String(password.into())
        )
    };
    let page = browser.submit(&fill("张长友", "wrong password"), "/login");
    assert!(page.contains("姓名或密码不对"), "{page}");
    // The right one.
    let page = browser.submit(&fill("张长友", PASSWORD), "/");
    assert!(page.contains("各班学生") && page.contains(CLASS), "{page}");
    assert!(page.contains("340 名学生"), "{page}");
    // The due list per member: 王瑞侠 owes this month's talks with his children.
    let due = &page[page.find("待完成与逾期").unwrap()..];
    let due = &due[..due.find("</table>").unwrap()];
    assert!(
        due.contains(HEAD_TEACHER) && due.contains("班主任"),
        "{due}"
    );
    assert!(page.contains("<svg"), "{page}");
    let cookie_visible = browser.eval("document.cookie");
    assert!(
        !cookie_visible.as_str().unwrap_or("").contains("sw_session"),
        "the session cookie is HttpOnly: {cookie_visible}"
    );
    let png = browser.screenshot(&shots.join("overview.png"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let page = browser.open(&hub.url("/students"), "/students");
    assert!(
        page.contains(CHILDREN[0].1) && page.contains(OTHER_CHILD),
        "{page}"
    );
    browser.screenshot(&shots.join("students.png"));

    // 冲突: pick the 班主任's number on the page.
    let page = browser.open(&hub.url("/conflicts"), "/conflicts");
    assert!(
        page.contains("共 1 处") && page.contains("13800001111"),
        "{page}"
    );
    browser.screenshot(&shots.join("conflicts.png"));
    let page = browser.submit(
        "{ const f = document.querySelector('.conflict form'); \
         [...f.querySelectorAll('input[name=pick]')].find(i => i.parentElement.textContent.includes('13800001111')).checked = true; \
         f.submit(); }",
        "/conflicts",
    );
    assert!(page.contains("共 0 处"), "{page}");
    let file = hub.archive().child_file(CHILDREN[0].1).unwrap();
    assert!(file.conflicts.is_empty());
    let guardian = file.sections.iter().find(|s| s.key == "guardian").unwrap();
    assert!(guardian.fields.iter().any(|f| f.value == "13800001111"));

    // 成员与设备: an invite for a new 班主任; its QR code, read back from the screenshot, is the
    // ticket, and the ticket is the hub's.
    browser.open(&hub.url("/members"), "/members");
    let page = browser.submit(
        &format!(
            "{{ const f = document.querySelector('form[action=\"/members/invite\"]'); \
             f.querySelector('input[name=member]').value = '陈华'; \
             f.querySelector('select[name=role]').value = 'head_teacher'; \
             f.querySelector('input[name=password]').value = '{PASSWORD}'; \
             f.submit(); }}"
        ),
        "/members/invite",
    );
    assert!(page.contains("已把 陈华"), "{page}");
    let png = browser.screenshot(&shots.join("invite.png"));
    let scanned = read_qr(&png);
    let invite = shouwang_core::membership::Invite::decode(&scanned.to_ascii_lowercase())
        .unwrap_or_else(|e| panic!("{e}: {scanned}"));
    assert_eq!(invite.role, Role::HeadTeacher);
    assert_eq!(
        hub.archive().find_member("陈华").unwrap().id,
        invite.member,
        "the ticket is for the member the page added"
    );

    // 更换班主任 in the browser: the confirmation page, then its button.
    browser.open(&hub.url("/members"), "/members");
    let page = browser.submit(
        &format!(
            "{{ const f = document.querySelector('form[action=\"/members/head\"]'); \
             f.querySelector('select[name=class]').value = {}; \
             f.querySelector('input[name=head]').value = {}; \
             f.submit(); }}",
            serde_json::Value::String(OTHER_CLASS.into()),
            serde_json::Value::String(HEAD_TEACHER.into())
        ),
        "/members/head",
    );
    assert!(page.contains("确认更换班主任"), "{page}");
    browser.screenshot(&shots.join("class-head.png"));
    let head_is = |name: &str| {
        let mut a = hub.archive();
        a.find_class(OTHER_CLASS).unwrap().head_teacher == Some(a.find_member(name).unwrap().id)
    };
    assert!(
        head_is(OTHER_HEAD),
        "nothing changed before the confirmation"
    );
    let page = browser.submit(
        "document.querySelector('form[action=\"/members/head\"]').submit(); true",
        "/members/head",
    );
    assert!(
        page.contains(&format!("已更换{OTHER_CLASS}的班主任：{HEAD_TEACHER}")),
        "{page}"
    );
    assert!(head_is(HEAD_TEACHER));

    // 报表: a download, read back.
    let downloads = shots.join("downloads");
    let _ = std::fs::remove_dir_all(&downloads);
    std::fs::create_dir_all(&downloads).unwrap();
    browser.call_browser(
        "Browser.setDownloadBehavior",
        serde_json::json!({"behavior": "allow", "downloadPath": downloads.display().to_string()}),
    );
    let page = browser.open(&hub.url("/reports"), "/reports");
    browser.screenshot(&shots.join("reports.png"));
    let child = hub.archive().find_child(CHILDREN[0].1).unwrap();
    let mut saved = Vec::new();
    for (link, sheets, first) in [
        ("/reports/summary".to_owned(), 1, "留守儿童信息汇总表"),
        ("/reports/registry".to_owned(), 1, "留守儿童基本情况登记表"),
        ("/reports/sante".to_owned(), 1, "三特儿童登记表"),
        ("/reports/pairings".to_owned(), 1, "结对帮扶登记表"),
        (
            "/reports/contacts?month=2026-11".to_owned(),
            1,
            "家访、谈心、电话记录月统计",
        ),
        (
            format!("/reports/child?child={}", child.as_str()),
            6,
            "基本情况登记表",
        ),
    ] {
        let path = link.split('?').next().unwrap();
        assert!(
            path == "/reports/child"
                || page.contains(&format!("action=\"{path}\""))
                || page.contains(&format!("href=\"{path}\"")),
            "{path} is offered: {page}"
        );
        browser.call("Page.navigate", serde_json::json!({"url": hub.url(&link)}));
        let mut file = None;
        for _ in 0..100 {
            file = std::fs::read_dir(&downloads)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "xlsx") && !saved.contains(p));
            if file.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let file = file.unwrap_or_else(|| panic!("the browser saved no file for {link}"));
        std::thread::sleep(Duration::from_millis(200));
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&file).unwrap();
        assert_eq!(book.sheet_names().len(), sheets, "{link}");
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let title = range.rows().next().unwrap()[0].to_string();
        assert!(title.contains(first), "{link}: {title}");
        if link == "/reports/summary" {
            let last = range.rows().next_back().unwrap().to_vec();
            assert_eq!(last[1].to_string(), "合计");
            assert_eq!(last[3], calamine::Data::Float(340.0));
        }
        if link == "/reports/registry" {
            assert_eq!(range.rows().count(), 2 + 340);
        }
        saved.push(file);
    }
    eprintln!("screenshots: {}", shots.display());
}

/// The active pairings, as (carer name, child name).
fn active_pairings(hub: &Hub) -> Vec<(String, String)> {
    let mut a = hub.archive();
    let school = a.school().unwrap();
    let mut out: Vec<(String, String)> = school
        .pairings
        .iter()
        .filter(|p| p.active)
        .map(|p| {
            (
                school.member_name(p.carer.as_str()),
                a.child_file(p.child.as_str()).unwrap().name,
            )
        })
        .collect();
    out.sort();
    out
}

/// The name of the head teacher of `class`.
fn head_of(hub: &Hub, class: &str) -> Option<String> {
    let school = hub.archive().school().unwrap();
    let c = school.classes.iter().find(|c| c.name == class).unwrap();
    c.head_teacher
        .as_ref()
        .map(|h| school.member_name(h.as_str()))
}

#[test]
fn an_administrator_ends_a_pairing_from_the_console() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, "晁月静");
    let page = web.get("/members").text();
    assert!(page.contains("action=\"/members/unpair\""), "{page}");
    let before = active_pairings(&hub);
    let pair = ("武秀梅".to_owned(), CHILDREN[1].1.to_owned());
    assert!(before.contains(&pair), "{before:?}");

    // Refused without the session's token, and with none at all: nothing changed.
    let r = web.post(
        "/members/unpair",
        &[
            ("csrf", "forged"),
            ("carer", "武秀梅"),
            ("child", CHILDREN[1].1),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("没有做任何改动"), "{}", r.text());
    let r = web.post(
        "/members/unpair",
        &[("carer", "武秀梅"), ("child", CHILDREN[1].1)],
    );
    assert_eq!(r.status, 403);
    // Bad input: a carer not paired with the child, an unknown child, an empty field.
    let r = web.post(
        "/members/unpair",
        &[
            ("csrf", &token),
            ("carer", "刘桂兰"),
            ("child", CHILDREN[1].1),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("没有与这名学生结对"), "{}", r.text());
    let r = web.post(
        "/members/unpair",
        &[
            ("csrf", &token),
            ("carer", "武秀梅"),
            ("child", "没有这个学生"),
        ],
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = web.post(
        "/members/unpair",
        &[("csrf", &token), ("carer", " "), ("child", CHILDREN[1].1)],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("帮扶人"), "{}", r.text());
    assert_eq!(active_pairings(&hub), before);

    // The pairing ends, and the page says what follows.
    let r = web.post(
        "/members/unpair",
        &[
            ("csrf", &token),
            ("carer", "武秀梅"),
            ("child", CHILDREN[1].1),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains(&format!("已结束结对：武秀梅 不再帮扶 {}", CHILDREN[1].1)),
        "{text}"
    );
    assert!(text.contains("下次同步"), "{text}");
    let after = active_pairings(&hub);
    assert!(!after.contains(&pair), "{after:?}");
    assert_eq!(after.len(), before.len() - 1, "only that pairing ended");
    // Ending it again is refused as the CLI refuses it.
    let r = web.post(
        "/members/unpair",
        &[
            ("csrf", &token),
            ("carer", "武秀梅"),
            ("child", CHILDREN[1].1),
        ],
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("没有与这名学生结对"), "{}", r.text());
}

#[test]
fn an_administrator_changes_a_class_head_after_a_confirmation_page() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, "晁月静");
    let page = web.get("/members").text();
    assert!(page.contains("action=\"/members/head\""), "{page}");
    assert_eq!(head_of(&hub, CLASS).as_deref(), Some(HEAD_TEACHER));

    // Adding a class that exists points to the console's own way of changing its head.
    let r = web.post("/members/class", &[("csrf", &token), ("name", CLASS)]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("更换班主任") && !r.text().contains("class head"),
        "{}",
        r.text()
    );

    // Bad input and forged forms change nothing, confirmed or not.
    for (fields, status, says) in [
        (
            vec![
                ("csrf", "forged"),
                ("class", CLASS),
                ("head", OTHER_HEAD),
                ("confirm", "1"),
            ],
            403,
            "没有做任何改动",
        ),
        (
            vec![("class", CLASS), ("head", OTHER_HEAD), ("confirm", "1")],
            403,
            "没有做任何改动",
        ),
        (
            vec![
                ("csrf", &token),
                ("class", "九年级(9)班"),
                ("head", OTHER_HEAD),
                ("confirm", "1"),
            ],
            404,
            "九年级(9)班",
        ),
        (
            vec![
                ("csrf", &token),
                ("class", CLASS),
                ("head", "没有这个人"),
                ("confirm", "1"),
            ],
            404,
            "没有这个人",
        ),
        (
            vec![
                ("csrf", &token),
                ("class", CLASS),
                ("head", ""),
                ("confirm", "1"),
            ],
            400,
            "新班主任",
        ),
    ] {
        let r = web.post("/members/head", &fields);
        assert_eq!(r.status, status, "{fields:?}: {}", r.text());
        assert!(r.text().contains(says), "{fields:?}: {}", r.text());
        assert_eq!(head_of(&hub, CLASS).as_deref(), Some(HEAD_TEACHER));
    }

    // The first post asks: the page says what the new head gains and the old one loses, and
    // changes nothing yet.
    let r = web.post(
        "/members/head",
        &[("csrf", &token), ("class", CLASS), ("head", OTHER_HEAD)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(page.contains("确认更换班主任"), "{page}");
    assert!(
        page.contains(&format!(
            "{OTHER_HEAD} 将可以查看和填写本班 4 名学生的档案，含私密部分"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("{HEAD_TEACHER} 将不再是本班班主任"))
            && page.contains("失去班主任角色"),
        "{page}"
    );
    assert_eq!(hidden(&page, "confirm"), "1");
    assert_eq!(head_of(&hub, CLASS).as_deref(), Some(HEAD_TEACHER));

    // Confirmed: the class changes hands.
    let r = web.post(
        "/members/head",
        &[
            ("csrf", &token),
            ("class", CLASS),
            ("head", OTHER_HEAD),
            ("confirm", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("已更换{CLASS}的班主任：{OTHER_HEAD}")),
        "{}",
        r.text()
    );
    assert_eq!(head_of(&hub, CLASS).as_deref(), Some(OTHER_HEAD));
    let old = hub.archive().find_member(HEAD_TEACHER).unwrap();
    assert!(!old.has(Role::HeadTeacher), "{old:?}");
    // Naming the head again changes nothing, and says so.
    let r = web.post(
        "/members/head",
        &[
            ("csrf", &token),
            ("class", CLASS),
            ("head", OTHER_HEAD),
            ("confirm", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("没有改动"), "{}", r.text());
}

#[test]
fn an_administrator_deactivates_a_member_after_a_confirmation_page() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, "晁月静");
    // 王瑞侠 is logged in too, and has a phone enrolled.
    let (mut teacher, _) = logged_in(&hub, HEAD_TEACHER);
    let devices = |hub: &Hub| {
        let school = hub.archive().school().unwrap();
        let m = school
            .members
            .iter()
            .find(|m| m.name == HEAD_TEACHER)
            .unwrap()
            .clone();
        let revoked: Vec<bool> = school
            .devices
            .iter()
            .filter(|d| d.member == m.id)
            .map(|d| d.revoked)
            .collect();
        (m.active, revoked)
    };
    assert_eq!(devices(&hub), (true, vec![false]));
    let page = web.get("/members").text();
    assert!(page.contains("action=\"/members/deactivate\""), "{page}");

    for (fields, status, says) in [
        (
            vec![
                ("csrf", "forged"),
                ("member", HEAD_TEACHER),
                ("confirm", "1"),
            ],
            403,
            "没有做任何改动",
        ),
        (
            vec![("member", HEAD_TEACHER), ("confirm", "1")],
            403,
            "没有做任何改动",
        ),
        (
            vec![("csrf", &token), ("member", "没有这个人"), ("confirm", "1")],
            404,
            "没有这个人",
        ),
        (
            vec![("csrf", &token), ("member", " "), ("confirm", "1")],
            400,
            "成员",
        ),
        (
            vec![("csrf", &token), ("member", "晁月静"), ("confirm", "1")],
            403,
            "不能停用自己",
        ),
    ] {
        let r = web.post("/members/deactivate", &fields);
        assert_eq!(r.status, status, "{fields:?}: {}", r.text());
        assert!(r.text().contains(says), "{fields:?}: {}", r.text());
        assert_eq!(devices(&hub), (true, vec![false]));
    }
    assert!(hub.archive().find_member("晁月静").unwrap().active);

    // The first post asks, naming what will happen; nothing changes yet.
    let r = web.post(
        "/members/deactivate",
        &[("csrf", &token), ("member", HEAD_TEACHER)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(page.contains("确认停用成员"), "{page}");
    assert!(page.contains("1 台设备"), "{page}");
    assert_eq!(hidden(&page, "confirm"), "1");
    assert_eq!(devices(&hub), (true, vec![false]));
    assert_eq!(teacher.get("/").status, 200);

    let r = web.post(
        "/members/deactivate",
        &[("csrf", &token), ("member", HEAD_TEACHER), ("confirm", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("已停用成员 {HEAD_TEACHER}，并停用其 1 台设备")),
        "{}",
        r.text()
    );
    assert_eq!(devices(&hub), (false, vec![true]));
    // His console sessions are deleted with him (none would come back on reactivation).
    let mut a = hub.archive();
    let id = a.find_member(HEAD_TEACHER).unwrap().id;
    let left: i64 = a
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM office_sessions WHERE member_id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    drop(a);
    assert_eq!(teacher.get("/").status, 303);
    // Again: nothing left to do, and the page says so.
    let r = web.post(
        "/members/deactivate",
        &[("csrf", &token), ("member", HEAD_TEACHER), ("confirm", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("已经停用，没有改动"), "{}", r.text());
    assert!(web.get("/members").text().contains("已停用"));
}

#[test]
fn a_head_teacher_cannot_end_pairings_change_heads_or_deactivate_members() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, HEAD_TEACHER);
    let before = active_pairings(&hub);
    for (path, fields) in [
        (
            "/members/unpair",
            vec![
                ("csrf", token.as_str()),
                ("carer", "武秀梅"),
                ("child", CHILDREN[1].1),
            ],
        ),
        (
            "/members/head",
            vec![
                ("csrf", token.as_str()),
                ("class", OTHER_CLASS),
                ("head", HEAD_TEACHER),
            ],
        ),
        (
            "/members/head",
            vec![
                ("csrf", token.as_str()),
                ("class", OTHER_CLASS),
                ("head", HEAD_TEACHER),
                ("confirm", "1"),
            ],
        ),
        (
            "/members/deactivate",
            vec![("csrf", token.as_str()), ("member", OTHER_HEAD)],
        ),
        (
            "/members/deactivate",
            vec![
                ("csrf", token.as_str()),
                ("member", OTHER_HEAD),
                ("confirm", "1"),
            ],
        ),
    ] {
        let r = web.post(path, &fields);
        assert_eq!(r.status, 403, "{path} {fields:?}: {}", r.text());
        assert!(
            r.text().contains("需要校长/领导组或档案管理员"),
            "{path}: {}",
            r.text()
        );
        assert!(!r.text().contains("确认"), "{path}: {}", r.text());
    }
    assert_eq!(active_pairings(&hub), before);
    assert_eq!(head_of(&hub, OTHER_CLASS).as_deref(), Some(OTHER_HEAD));
    assert!(hub.archive().find_member(OTHER_HEAD).unwrap().active);
    let page = web.get("/").text();
    assert!(!page.contains("/members/unpair") && !page.contains("/members/deactivate"));
}

#[test]
fn a_member_changes_their_own_password_and_their_other_sessions_end() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, "晁月静");
    let mut other = hub.browser();
    assert_eq!(other.login("晁月静", PASSWORD).status, 303);
    let (mut teacher, teacher_token) = logged_in(&hub, HEAD_TEACHER);
    let new = "新的办公室密码2027";
    let hash = |hub: &Hub, member: &str| -> String {
        let mut a = hub.archive();
        let id = a.find_member(member).unwrap().id;
        a.store()
            .conn()
            .query_row(
                "SELECT hash FROM office_passwords WHERE member_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .unwrap()
    };
    let old_hash = hash(&hub, "晁月静");

    let page = web.get("/password");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("当前密码"), "{}", page.text());
    assert!(web.get("/").text().contains("href=\"/password\""));

    for (fields, status, says) in [
        (
            vec![
                ("csrf", "forged"),
                ("current", PASSWORD),
                ("new", new),
                ("again", new),
            ],
            403,
            "没有做任何改动",
        ),
        (
            vec![("current", PASSWORD), ("new", new), ("again", new)],
            403,
            "没有做任何改动",
        ),
        (
            vec![
                ("csrf", &token),
                ("current", "不是这个密码"),
                ("new", new),
                ("again", new),
            ],
            403,
            "当前密码不对",
        ),
        (
            vec![
                ("csrf", &token),
                ("current", PASSWORD),
                ("new", "short"),
                ("again", "short"),
            ],
            400,
            "至少 8 个字符",
        ),
        (
            vec![
                ("csrf", &token),
                ("current", PASSWORD),
                ("new", new),
                ("again", "别的密码12345"),
            ],
            400,
            "两次输入的新密码不一致",
        ),
    ] {
        let r = web.post("/password", &fields);
        assert_eq!(r.status, status, "{fields:?}: {}", r.text());
        assert!(r.text().contains(says), "{fields:?}: {}", r.text());
        assert_eq!(hash(&hub, "晁月静"), old_hash, "{fields:?}");
    }
    assert_eq!(other.get("/").status, 200, "nothing ended yet");

    let r = web.post(
        "/password",
        &[
            ("csrf", &token),
            ("current", PASSWORD),
            ("new", new),
            ("again", new),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("已修改密码"), "{}", r.text());
    let stored = hash(&hub, "晁月静");
    assert!(
        stored.starts_with("$argon2id$") && stored != old_hash,
        "{stored}"
    );
    // This session goes on; the other one is over.
    assert_eq!(web.get("/").status, 200);
    assert_eq!(other.get("/").status, 303);
    assert_eq!(hub.browser().login("晁月静", PASSWORD).status, 401);
    assert_eq!(hub.browser().login("晁月静", new).status, 303);

    // A 班主任 changes only his own: a member named in the form is ignored.
    let teacher_hash = hash(&hub, HEAD_TEACHER);
    let r = teacher.post(
        "/password",
        &[
            ("csrf", &teacher_token),
            ("member", "晁月静"),
            ("current", PASSWORD),
            ("new", "王老师的新密码2027"),
            ("again", "王老师的新密码2027"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(hash(&hub, HEAD_TEACHER), teacher_hash);
    assert_eq!(hash(&hub, "晁月静"), stored);
}

#[test]
fn wrong_current_passwords_count_towards_the_lock_out() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, HEAD_TEACHER);
    let new = "王老师的新密码2027";
    for _ in 0..5 {
        let r = web.post(
            "/password",
            &[
                ("csrf", &token),
                ("current", "猜一个密码"),
                ("new", new),
                ("again", new),
            ],
        );
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("当前密码不对"), "{}", r.text());
    }
    // Locked now, even with the right password; and a login for that name from this browser
    // too. (Her browser is one she logged in from: its failures are its own, and lock it
    // whatever address it is at, not the other browsers at this address.)
    let r = web.post(
        "/password",
        &[
            ("csrf", &token),
            ("current", PASSWORD),
            ("new", new),
            ("again", new),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("分钟后再试"), "{}", r.text());
    assert_eq!(web.login(HEAD_TEACHER, PASSWORD).status, 429);
    assert_eq!(web.login(HEAD_TEACHER, new).status, 429);
    // The password did not change: the lock ends with the old one still valid.
    assert_eq!(web.get("/").status, 200, "the session goes on");
}

/// 查阅记录: an administrator reads the access log the devices keep (the 班主任's opening of a
/// private part and her reveal of an ID number, with its reason), filters it by member and by
/// child (with where the child's documents were sent), and is warned when a chain was altered;
/// a 班主任 may not open it.
#[test]
fn the_access_log_page_lists_filters_and_reports_tampering() {
    let hub = Hub::start();
    let mut a = hub.archive();
    let child = a.find_child(CHILDREN[0].1).unwrap();
    drop(a);
    let (mut teacher, token) = logged_in(&hub, HEAD_TEACHER);
    assert_eq!(
        teacher.get(&format!("/students/{}", child.as_str())).status,
        200
    );
    let r = teacher.post(
        &format!("/students/{}/reveal", child.as_str()),
        &[("csrf", &token), ("why", "核对学籍")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(teacher.get("/audit").status, 403);

    let (mut office, _) = logged_in(&hub, "张长友");
    let page = office.get("/audit").text();
    assert!(page.contains("name=\"child\" value=\"\" maxlength=\"50\" autocomplete=\"off\""));
    for expected in [
        "核对无误",
        "查看保密档案",
        "查看完整身份证号",
        HEAD_TEACHER,
        CHILDREN[0].1,
        "核对学籍",
    ] {
        assert!(page.contains(expected), "{expected} missing: {page}");
    }
    assert!(!page.contains("id_reveal") && !page.contains("private_view"));
    let page = office.get(&format!("/audit?member={OTHER_HEAD}")).text();
    assert!(
        page.contains("共 0 条") && !page.contains("核对学籍"),
        "{page}"
    );
    let page = office
        .get(&format!("/audit?child={}", CHILDREN[0].0))
        .text();
    assert!(
        page.contains("核对学籍") && page.contains("发往了哪些设备"),
        "{page}"
    );

    // Someone with the hub's files alters the reason of an entry.
    let mut a = hub.archive();
    let device = a.device().clone();
    a.store()
        .write(|b| {
            b.change(
                &shouwang_core::doc::DocId::Audit(device),
                false,
                "改动",
                |tx| {
                    use automerge::ReadDoc;
                    use automerge::transaction::Transactable;
                    let entries = tx.get(automerge::ROOT, "entries")?.unwrap().1;
                    let keys: Vec<String> = tx.keys(&entries).collect();
                    let last = tx.get(&entries, keys.last().unwrap().as_str())?.unwrap().1;
                    tx.put(&last, "why", "例行检查")?;
                    Ok(())
                },
            )
        })
        .unwrap();
    let page = office.get("/audit").text();
    assert!(page.contains("查阅记录有被改动的迹象"), "{page}");
}

/// A registry going upward needs the ID numbers in full. The console downloads it so only for
/// an administrator who gives a reason, which is recorded first, naming the member and the
/// report; without a reason, with a forged token, for a report that lists no ID numbers or for
/// a 班主任 it refuses and records nothing.
#[test]
fn an_administrator_downloads_the_registry_with_id_numbers_in_full_and_it_is_recorded() {
    use calamine::{Reader, Xlsx};
    let hub = Hub::start();
    let mut a = hub.archive();
    let before = a.audit_log().unwrap().entries;
    drop(a);
    let (mut teacher, teacher_token) = logged_in(&hub, HEAD_TEACHER);
    let r = teacher.post(
        "/reports/registry/reveal",
        &[("csrf", &teacher_token), ("why", "上报教育局")],
    );
    assert_eq!(r.status, 403, "{}", r.text());

    let (mut office, token) = logged_in(&hub, "张长友");
    let page = office.get("/reports").text();
    assert!(
        page.contains("action=\"/reports/registry/reveal\"")
            && !page.contains("action=\"/reports/summary/reveal\""),
        "{page}"
    );
    for (path, fields, expected) in [
        (
            "/reports/registry/reveal",
            vec![("csrf", token.as_str()), ("why", "  ")],
            "原因",
        ),
        (
            "/reports/registry/reveal",
            vec![("csrf", "forged"), ("why", "上报教育局")],
            "",
        ),
        (
            "/reports/summary/reveal",
            vec![("csrf", token.as_str()), ("why", "上报教育局")],
            "不含身份证号",
        ),
        (
            "/reports/child/reveal",
            vec![
                ("csrf", token.as_str()),
                ("why", "转学"),
                ("child", "没有这个学生"),
            ],
            "找不到",
        ),
    ] {
        let r = office.post(path, &fields);
        assert_ne!(r.status, 200, "{path} {fields:?}");
        assert!(r.text().contains(expected), "{}", r.text());
    }
    let mut a = hub.archive();
    let new = new_entries(&mut a, &before);
    assert!(new.is_empty(), "a refusal records nothing: {new:?}");
    drop(a);

    let r = office.post(
        "/reports/registry/reveal",
        &[("csrf", &token), ("why", "上报教育局")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut book = Xlsx::new(std::io::Cursor::new(r.body.clone())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let text: Vec<String> = sheet.cells().map(|(_, _, c)| c.to_string()).collect();
    for id in [id_number("001"), id_number("101")] {
        assert!(text.contains(&id), "{id} in full: {text:?}");
    }
    let mut a = hub.archive();
    let new = new_entries(&mut a, &before);
    let admin = a.find_member("张长友").unwrap().id;
    let reveal = new
        .iter()
        .find(|e| e.what == "id_reveal")
        .expect("the reveal is recorded");
    assert_eq!(reveal.member, admin.as_str());
    assert!(
        reveal.target.contains("基本情况登记表"),
        "{}",
        reveal.target
    );
    assert_eq!(reveal.why.as_deref(), Some("上报教育局"));
    assert!(
        new.iter()
            .any(|e| e.what == "report" && e.member == admin.as_str()),
        "{new:?}"
    );
}

/// Changes the trust rules refused or listed reach an administrator in the console, not only
/// the CLI (`shouwang quarantine`): the 班主任's modified app writes a 谈心 as if he were a
/// 爱心妈妈 (refused) and a 家访 dated 2099 (taken, listed for review). The overview says there is
/// something to review; `/review` lists both, with the reason and where each came from; a
/// 班主任 may not open it.
#[test]
fn an_administrator_reviews_the_changes_the_trust_rules_refused_or_listed() {
    use shouwang_tests::attack;
    use shouwang_tests::fixtures::{Device, join, sync};

    let hub = Hub::start();
    let (mut office, _) = logged_in(&hub, "张长友");
    let page = office.get("/review").text();
    assert!(page.contains("没有需要核实的修改"), "{page}");
    assert!(!office.get("/").text().contains("需要核实"));

    // A phone of the 班主任, set up from the hub's archive, whose app was modified.
    let mut school = Device {
        name: "hub",
        archive: hub.archive(),
        dir: tempfile::tempdir().unwrap(),
    };
    let mut teacher = join(&mut school, HEAD_TEACHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    // The 家访 first: a change made after a refused one in the same file depends on it and is
    // refused with it.
    attack::home_visit_dated(&mut teacher.archive, &child, "2099-01-01");
    attack::talk_dated(&mut teacher.archive, &child, "2026-11-20", None);
    sync(&mut teacher, &mut school);
    drop(school);

    let overview = office.get("/").text();
    assert!(
        overview.contains("需要核实") && overview.contains("href=\"/review\""),
        "{overview}"
    );
    let page = office.get("/review").text();
    for expected in [
        "已接收、需要核实的修改（1 项）",
        "2099-01-01",
        "被拒绝并隔离的修改（1 项）",
        "不能在这份档案里填写谈心记录",
        HEAD_TEACHER,
        CHILDREN[0].1,
        "数据文件",
    ] {
        assert!(page.contains(expected), "{expected} missing: {page}");
    }

    let (mut head, _) = logged_in(&hub, HEAD_TEACHER);
    assert_eq!(head.get("/review").status, 403);
    assert!(!head.get("/").text().contains("需要核实"));
}

/// A conflict in a child's private part (保密档案: here her 心理问题 flag set apart on the
/// office's computer and the 班主任's phone) is counted on the 冲突 page, with a link to her
/// file, and none of its values: the values are shown on her page, and opening it is in the
/// access log. Reading the 冲突 page records nothing.
#[test]
fn a_conflict_in_a_private_part_is_shown_only_where_opening_it_is_logged() {
    use shouwang_tests::fixtures::{Device, join, sync};

    let hub = Hub::start();
    let mut school = Device {
        name: "hub",
        archive: hub.archive(),
        dir: tempfile::tempdir().unwrap(),
    };
    let mut teacher = join(&mut school, HEAD_TEACHER);
    for (d, value) in [(&mut teacher, "是"), (&mut school, "否")] {
        d.archive
            .edit_child(
                CHILDREN[0].1,
                "private_flags",
                &shouwang_tests::fixtures::kv(&[("psychological", value)]),
            )
            .unwrap();
    }
    sync(&mut teacher, &mut school);
    let child = school.archive.find_child(CHILDREN[0].1).unwrap();
    drop(school);

    let (mut office, _) = logged_in(&hub, "张长友");
    let logged = |hub: &Hub| {
        let mut a = hub.archive();
        let log = a.audit_log().unwrap();
        log.entries
            .iter()
            .filter(|e| e.what == "private_view" && e.target == child.as_str())
            .count()
    };
    let before = logged(&hub);
    let page = office.get("/conflicts").text();
    assert!(
        page.contains("保密档案里有 1 处冲突")
            && page.contains(&format!("href=\"/students/{}\"", child.as_str())),
        "{page}"
    );
    assert!(
        !page.contains("心理问题") && !page.contains("private_flags"),
        "a private value or field on the 冲突 page: {page}"
    );
    assert_eq!(logged(&hub), before, "the 冲突 page opened nothing");

    let file = office.get(&format!("/students/{}", child.as_str())).text();
    assert!(file.contains("心理问题"), "{file}");
    assert_eq!(logged(&hub), before + 1, "opening her file is recorded");
}

#[test]
fn every_console_response_tells_the_browser_not_to_guess_its_type() {
    let hub = Hub::start();
    let mut anonymous = hub.browser();
    let (mut web, _) = logged_in(&hub, "晁月静");
    let responses = [
        ("the login page", anonymous.get("/login")),
        ("a redirect to it", anonymous.get("/students")),
        ("a page", web.get("/students")),
        ("the style sheet", web.get("/assets/style.css")),
        ("a workbook", web.get("/reports/registry")),
        ("an error page", web.get("/students/c-0000000000000000")),
    ];
    for (what, r) in responses {
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what} ({}): {:?}",
            r.status,
            r.headers
        );
        // Plain HTTP (the console on 127.0.0.1) asks for no HTTPS it does not serve
        // (`office_tls.rs` checks the header over TLS).
        assert_eq!(r.header("strict-transport-security"), None, "{what}");
    }
}

#[test]
fn a_session_ends_when_its_role_is_taken_away_even_if_it_is_given_back_before_the_next_request() {
    let hub = Hub::start();
    let (mut admin, token) = logged_in(&hub, "晁月静");
    let (mut teacher, _) = logged_in(&hub, HEAD_TEACHER);
    assert!(teacher.get("/students").text().contains(CHILDREN[0].1));
    // Another member heads the class for a while, and 王瑞侠 heads it again: his session made
    // no request in between, so it never saw him without the role.
    for head in [OTHER_HEAD, HEAD_TEACHER] {
        let r = admin.post(
            "/members/head",
            &[
                ("csrf", token.as_str()),
                ("class", CLASS),
                ("head", head),
                ("confirm", "1"),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        hub.archive()
            .find_member(HEAD_TEACHER)
            .unwrap()
            .has(Role::HeadTeacher)
    );
    let r = teacher.get("/students");
    assert_eq!(r.status, 303, "the old session is over: {}", r.text());
    assert_eq!(r.header("location"), Some("/login"));
    // He logs in again and works as before; the administrator's session was not touched.
    assert_eq!(teacher.login(HEAD_TEACHER, PASSWORD).status, 303);
    assert!(teacher.get("/students").text().contains(CHILDREN[0].1));
    assert_eq!(admin.get("/members").status, 200);
}

#[test]
fn a_flood_of_logins_does_not_hold_up_the_pages_of_members_logged_in() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    let hub = Hub::start();
    let (mut web, _) = logged_in(&hub, "晁月静");
    // Each login checks an argon2 hash, on purpose slow. Forty arrive at once, each for a
    // different name (no lock-out yet), then a member opens a page. The login's gate
    // (`login_gate`) answers those past sixteen under way, or past twenty from the address in a
    // minute, at once (busy, too fast); the others are checked.
    const FLOOD: usize = 40;
    let answered = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(FLOOD + 1));
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let (mut guesser, answered, start) = (hub.browser(), answered.clone(), start.clone());
            let token = hidden(&guesser.get("/login").text(), "csrf");
            std::thread::spawn(move || {
                start.wait();
                let name = format!("猜测{i}");
                let r = guesser.post(
                    "/login",
                    &[
                        ("name", &name),
                        ("password", "猜的密码123456"),
                        ("csrf", &token),
                    ],
                );
                if r.status == 401 {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                r.status
            })
        })
        .collect();
    start.wait();
    // Let the guesses reach the hub first (this only orders the requests; nothing is timed).
    std::thread::sleep(Duration::from_millis(50));
    let page = web.get("/students");
    let logins_answered_before_the_page = answered.load(Ordering::SeqCst);
    assert_eq!(page.status, 200);
    let statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| [401, 429, 503].contains(s)),
        "every guess is refused: {statuses:?}"
    );
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        (2..=shouwang_office::login_gate::PER_MINUTE).contains(&checked),
        "{statuses:?}"
    );
    // The page waited for the store, not for the password checks: most guesses were still
    // being checked when it came back.
    assert!(
        logins_answered_before_the_page <= checked / 2,
        "the page came back only after {logins_answered_before_the_page} of {checked} checks"
    );
}

#[test]
fn a_conflict_in_a_record_offers_its_form_only_to_the_records_author() {
    let (hub, path) = Hub::start_with_record_conflict();
    let form_for = |path: &str| format!("name=\"path\" value=\"{path}\"");
    let (mut admin, _) = logged_in(&hub, "晁月静");
    let child = hub.archive().find_child(CHILDREN[1].1).unwrap();
    for page in [
        admin.get("/conflicts").text(),
        admin.get(&format!("/students/{}", child.as_str())).text(),
    ] {
        // Both values are shown, with who may resolve them, and no form that would be refused.
        assert!(page.contains("外婆在家"), "{page}");
        assert!(!page.contains(&form_for(&path)), "{page}");
        assert!(page.contains("只有填写这条记录的王瑞侠能解决"), "{page}");
    }
    assert!(
        admin
            .get("/conflicts")
            .text()
            .contains(&form_for("guardian.phone")),
        "a field of the file she may resolve"
    );
    // Posted all the same, it is refused and nothing changes.
    let token = admin.csrf();
    let r = admin.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", child.as_str()),
            ("path", &path),
            ("pick", "1"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // Its author has the form, and resolves it.
    let (mut teacher, token) = logged_in(&hub, HEAD_TEACHER);
    let page = teacher.get("/conflicts").text();
    assert!(page.contains(&form_for(&path)), "{page}");
    let r = teacher.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", child.as_str()),
            ("path", &path),
            ("pick", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        hub.archive()
            .child_file(CHILDREN[1].1)
            .unwrap()
            .conflicts
            .is_empty()
    );
}

/// Failed logins the hub has counted (decrypted: `hub.db` is encrypted).
fn failures(hub: &Hub) -> i64 {
    hub.archive()
        .store()
        .conn()
        .query_row("SELECT count(*) FROM office_failures", [], |r| r.get(0))
        .unwrap()
}

/// A script posting logins with a new name each time is never locked out by name, so it is
/// bounded by its address: twenty logins a minute, then a Chinese "too fast" without the
/// archive being touched (no failure row written). The 校长's office computer behind the same
/// address (a browser she logged in from) still logs in at once.
#[test]
fn an_address_trying_names_is_slowed_before_the_archive_and_her_browser_is_not() {
    let hub = Hub::start();
    assert!(hub.set_password("张长友", PASSWORD).0);
    let mut hers = hub.browser();
    assert_eq!(hers.login("张长友", PASSWORD).status, 303);
    let mut script = hub.browser();
    for i in 0..19 {
        let r = script.login(&format!("没有这个人{i}"), "guess-guess");
        assert_eq!(r.status, 401, "{i}: {}", r.text());
    }
    let written = failures(&hub);
    let r = script.login("没有这个人99", "guess-guess");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("一分钟"), "{}", r.text());
    assert_eq!(failures(&hub), written, "nothing written past the limit");
    assert_eq!(hers.login("张长友", PASSWORD).status, 303);

    // After a restart, with the script at the address's limit again before she comes: her
    // browser is still known (read from the archive), and she logs in.
    let hub = hub.restart();
    for i in 0..20 {
        script.login(&format!("没有这个人{i}"), "guess-guess");
    }
    assert_eq!(script.login("没有这个人", "guess-guess").status, 429);
    assert_eq!(hers.login("张长友", PASSWORD).status, 303);
    drop(hub);
}

/// A name longer than any member's (50 characters: a password typed into the wrong box, or a
/// script's megabytes of random names) is refused before the archive is touched, in Chinese
/// and without being shown back, and no failed attempt is written to `hub.db`; a login form
/// over the route's body limit is refused the same way, naming neither box (a password pasted
/// whole from a file is as likely). Fifty characters is still a name.
#[test]
fn an_over_long_login_name_is_refused_before_anything_is_written() {
    let hub = Hub::start();
    let mut web = hub.browser();
    let long = "张".repeat(51);
    let r = web.login(&long, PASSWORD);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("姓名太长"), "{}", r.text());
    assert!(!r.text().contains(&long), "the name is not shown back");
    assert_eq!(failures(&hub), 0, "nothing written");

    let r = web.login(&"张".repeat(50), PASSWORD);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(failures(&hub), 1, "a name of 50 characters is counted");

    let huge = "x".repeat(64 * 1024);
    let r = web.login(&huge, PASSWORD);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("太长"), "{}", r.text());
    assert_eq!(failures(&hub), 1, "nothing written");
    // The body is refused before it is read, so which box was too long is not known: the
    // answer does not blame the name when it was the password.
    let r = web.login("张长友", &huge);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("填写的内容太长了"), "{}", r.text());
    assert!(!r.text().contains("姓名太长"), "{}", r.text());
    assert_eq!(failures(&hub), 1, "nothing written");

    // The console goes on.
    assert!(hub.set_password("张长友", PASSWORD).0);
    assert_eq!(web.login("张长友", PASSWORD).status, 303);
}

/// Every other form is read up to 64 KiB, before anyone is known (a posted body is read before
/// the session is checked): anyone on the network posting megabytes to the console's forms
/// gets a Chinese page saying it is too long, as does a form that does not parse, and nothing
/// is written. A resolution with a note of 5,000 characters still fits.
#[test]
fn a_form_over_the_console_s_limit_is_refused_in_chinese_before_it_is_read() {
    let hub = Hub::start();
    let mut web = hub.browser();
    let huge = "x".repeat(100 * 1024);
    for path in [
        "/members/add",
        "/conflicts/resolve",
        "/students/x/reveal",
        "/reports/x/reveal",
        "/password",
    ] {
        let r = web.post(path, &[("name", &huge)]);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        assert!(r.text().contains("太长"), "{path}: {}", r.text());
    }
    let r = web.post("/members/add", &[("csrf", "x"), ("csrf", "y")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("表单读不出来"), "{}", r.text());

    let (mut web, token) = logged_in(&hub, "张长友");
    let note = "奶".repeat(5_000);
    let r = web.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", "nobody"),
            ("doc", "child/nobody"),
            ("field", "notes"),
            ("value", &note),
        ],
    );
    assert_ne!(r.status, 413, "{}", r.text());
}

/// The session cookie lives as long as the browser (no `Max-Age`, no `Expires`: closing the
/// browser on a shared office computer ends it), and the hub ends a session left idle for 30
/// minutes; each request extends it, up to the session's 12 hours. The session is aged by
/// moving its times back in `hub.db`, as if the time had passed.
#[test]
fn a_session_ends_with_the_browser_or_after_half_an_hour_idle() {
    let hub = Hub::start();
    assert!(hub.set_password("张长友", PASSWORD).0);
    let mut web = hub.browser();
    let r = web.login("张长友", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sw_session="))
        .unwrap()
        .to_owned();
    let lower = session.to_ascii_lowercase();
    assert!(
        !lower.contains("max-age") && !lower.contains("expires"),
        "a cookie for the browser's session only: {session}"
    );
    let age = |column: &str, seconds: i64| {
        hub.archive()
            .store()
            .conn()
            .execute(
                &format!("UPDATE office_sessions SET {column} = {column} - ?1"),
                [seconds],
            )
            .unwrap();
    };
    let last_seen = || -> i64 {
        hub.archive()
            .store()
            .conn()
            .query_row("SELECT max(last_seen) FROM office_sessions", [], |r| {
                r.get(0)
            })
            .unwrap()
    };

    // 29 minutes idle: still in, and the request counts as use.
    age("last_seen", 29 * 60);
    assert_eq!(web.get("/").status, 200);
    assert!(last_seen() >= common::now() - 60, "the request extended it");
    // Another 29 minutes: still in, since the last request.
    age("last_seen", 29 * 60);
    assert_eq!(web.get("/students").status, 200);

    // 31 minutes idle: over.
    age("last_seen", 31 * 60);
    let r = web.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));

    // A session in use still ends 12 hours after it opened.
    assert_eq!(web.login("张长友", PASSWORD).status, 303);
    assert_eq!(web.get("/").status, 200);
    age("created", 12 * 3600 + 1);
    age("expires", 12 * 3600 + 1);
    assert_eq!(web.get("/").status, 303);
}

/// An administrator cannot mint a device invite for another administrator: whoever scanned it
/// would write as the 校长 on every device. Any other member's she can, and her own new phone
/// (or a new administrator's) once she types her password again.
#[test]
fn an_administrator_cannot_invite_a_device_for_another_administrator() {
    let hub = Hub::start();
    let (mut web, token) = logged_in(&hub, "晁月静");
    let invite = |web: &mut Client, member: &str| {
        web.post(
            "/members/invite",
            &[
                ("csrf", &token),
                ("member", member),
                ("role", ""),
                ("days", "3"),
                ("password", PASSWORD),
            ],
        )
    };
    let r = invite(&mut web, "张长友");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("另一位管理员"), "{}", r.text());
    assert!(!r.text().contains("shouwang1"), "no invite shown");
    let r = invite(&mut web, HEAD_TEACHER);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("shouwang1"));
    // Her own new phone, as any device, outlives this session: whoever sits at a browser she
    // left logged in must not enroll one, so her password is asked.
    let own = |web: &mut Client, password: &str| {
        web.post(
            "/members/invite",
            &[
                ("csrf", &token),
                ("member", "晁月静"),
                ("role", ""),
                ("days", "3"),
                ("password", password),
            ],
        )
    };
    for typed in ["", "不对的密码"] {
        let r = own(&mut web, typed);
        assert_eq!(r.status, 403, "{typed:?}: {}", r.text());
        assert!(r.text().contains("密码"), "{}", r.text());
        assert!(!r.text().contains("shouwang1"), "no invite shown");
    }
    // So for a new member's device (added with it: nothing is added without it).
    let r = web.post(
        "/members/invite",
        &[
            ("csrf", &token),
            ("member", "孙建国"),
            ("role", "archivist"),
            ("days", "3"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(hub.archive().find_member("孙建国").is_err(), "nobody added");
    let r = own(&mut web, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("shouwang1"));
}

/// A stranger on the school's Wi-Fi opens connections to the console and sends nothing: past
/// its address's share (64) the console closes each at once, and the office's browser, from
/// another address, still gets its pages. (Before, every such connection was held for ever.)
#[test]
fn a_stranger_holding_connections_does_not_keep_the_office_out() {
    use shouwang_tests::http::{closed_within, connect_from};
    use std::net::{Ipv4Addr, SocketAddr};

    let hub = Hub::start();
    let console = SocketAddr::from((Ipv4Addr::LOCALHOST, hub.ports.http));
    let stranger = Ipv4Addr::new(127, 0, 0, 9);
    let mut held: Vec<_> = (0..64).map(|_| connect_from(stranger, console)).collect();
    let mut over = connect_from(stranger, console);
    assert!(
        closed_within(&mut over, Duration::from_secs(20)),
        "a connection past the stranger's share was kept"
    );
    assert!(
        !closed_within(&mut held[0], Duration::from_millis(200)),
        "those within it stay (until idle)"
    );
    let page = hub.browser().get("/login");
    assert_eq!(page.status, 200);
    drop(held);
}
