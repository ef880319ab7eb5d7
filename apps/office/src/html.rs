//! Page layout and escaping. Every page is built from strings here; anything that came from
//! the archive or the request passes through [`esc`] before it is written into HTML.

use std::fmt::Write as _;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::auth::Viewer;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment or query value (percent-encoding every byte that is not unreserved).
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An HTML response with the console's security headers: no framing, no outside resource,
/// no inline script (the pages have none).
pub fn respond(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// The navigation entries: (path, label, administrators only).
const NAV: [(&str, &str, bool); 7] = [
    ("/", "概览", false),
    ("/students", "学生", false),
    ("/conflicts", "冲突", false),
    ("/members", "成员与设备", true),
    ("/reports", "报表", true),
    ("/audit", "查阅记录", true),
    ("/review", "待核实", true),
];

/// A page with the navigation for `viewer`; `current` is the path of the active entry.
pub fn page(viewer: &Viewer, school: &str, title: &str, current: &str, body: &str) -> Response {
    let mut nav = String::new();
    for (path, label, admin) in NAV {
        if admin && !viewer.admin {
            continue;
        }
        let class = if path == current {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{path}\"{class}>{label}</a>");
    }
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · {school} · 守望</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body><header class=\"top\"><span class=\"brand\">守望 · {school}</span><nav>{nav}</nav><form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><span>{name}（{roles}）</span><a href=\"/password\">修改密码</a><button type=\"submit\">退出</button></form></header><main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title),
        school = esc(school),
        csrf = esc(&viewer.csrf),
        name = esc(&viewer.member.name),
        roles = esc(&viewer.member.role_labels()),
    );
    respond(html)
}

/// A page with no navigation (login, errors).
pub fn bare_page(title: &str, body: &str) -> Response {
    respond(format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · 守望</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body><main class=\"narrow\"><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    ))
}

/// A table with a header row; cells are HTML already escaped by the caller.
#[derive(Debug, Default)]
pub struct Table {
    html: String,
    rows: usize,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        let mut html = String::from("<table><thead><tr>");
        for h in headers {
            let _ = write!(html, "<th>{}</th>", esc(h));
        }
        html.push_str("</tr></thead><tbody>");
        Table { html, rows: 0 }
    }

    /// A row of cells that are already HTML.
    pub fn row_html(&mut self, cells: &[String]) {
        self.html.push_str("<tr>");
        for c in cells {
            let _ = write!(self.html, "<td>{c}</td>");
        }
        self.html.push_str("</tr>");
        self.rows += 1;
    }

    /// A row of plain text cells.
    pub fn row(&mut self, cells: &[&str]) {
        let cells: Vec<String> = cells.iter().map(|c| esc(c)).collect();
        self.row_html(&cells);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(mut self) -> String {
        self.html.push_str("</tbody></table>");
        self.html
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// The Chinese label of a choice field of the 基本情况 section (`sex`, `parents_away`).
pub fn profile_choice(key: &str, value: Option<&str>) -> String {
    use shouwang_core::forms::FieldValue;
    let Some(value) = value else {
        return String::new();
    };
    shouwang_core::kinds::PROFILE
        .fields
        .iter()
        .find(|f| f.key == key)
        .map_or_else(
            || value.to_owned(),
            |f| f.display(&FieldValue::Str(value.to_owned())),
        )
}

/// A local date and time from unix seconds (`—` if unknown).
pub fn time(secs: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(secs, 0).single() {
        Some(t) if secs > 0 => t.format("%Y-%m-%d %H:%M").to_string(),
        _ => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(
            url("三年级(1)班"),
            "%E4%B8%89%E5%B9%B4%E7%BA%A7%281%29%E7%8F%AD"
        );
    }
}
