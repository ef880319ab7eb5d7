//! Who is using the console: passwords, sessions, lock-out and CSRF tokens.
//!
//! - A password is set with `shouwang-relay office-password --member 名字` ([`set_password`])
//!   for a member who may log in ([`may_log_in`]: 校长/领导组, 档案管理员, 班主任), hashed with
//!   argon2id (a PHC string with its own random salt) into the hub's `office_passwords`.
//!   Setting it again ends the member's sessions. A member logged in changes their own at
//!   `/password` (`change_password`): the current password first (a wrong one counts towards
//!   the lock-out below), then the same rules; their other sessions end, this one goes on.
//! - A login name longer than a member's name can be ([`MAX_MEMBER_NAME_CHARS`]) is refused
//!   before the archive is touched, and the login form's body is limited
//!   ([`LOGIN_BODY_LIMIT`]), so no one can fill `hub.db` through the login page.
//! - Logging in checks the lock-out first: 5 failures for one name from one address within 15
//!   minutes lock that name from that address for 15 minutes after the last of them, whatever
//!   the password (an unknown name counts too, and fails the same way and takes as long; it is
//!   counted under a keyed hash of it, [`failure_key`], never as typed: a password typed into
//!   the name box is not stored). 30 failures for one member from all addresses together lock
//!   the member everywhere. An attempt is counted before its password is checked and taken
//!   back if it was right, so attempts checked at the same time see each other.
//!   A browser the member logged in from before is exempt from both (device cookies, as
//!   OWASP's "slow down online guessing attacks with device cookies" describes): a login
//!   sets a cookie of the member's own ([`browser_cookie`]: members sharing the office's
//!   computer each keep theirs), a random token whose SHA-256 the hub keeps with the member
//!   (`office_browsers`; [`BROWSER_SECONDS`] from the last login with it, which sends it again;
//!   at most [`BROWSERS_PER_MEMBER`]); an attempt carrying one of the member's is counted and
//!   locked on its own ([`LOCK_FAILURES`] for that browser), never by the failures of others.
//!   Without it, anyone on the school's network could keep the 校长 out of the console for
//!   good by failing 30 logins in her name every 15 minutes. Setting a password forgets the
//!   member's browsers (but the one she changes her own password in). The check
//!   itself (argon2) runs outside the archive's turn, at most [`PASSWORD_CHECKS`] at once, so a
//!   flood of logins does not hold up the pages of members logged in.
//! - A session is a random 32-byte token in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//!   when the request came over TLS; no `Max-Age`, so closing the browser on a shared office
//!   computer ends it); the hub keeps only its SHA-256, with the member, its own CSRF token,
//!   its expiry (12 hours after it opened, however much it is used), when it was last used (it
//!   ends after [`IDLE_SECONDS`] without a request) and the member's standing it was opened under
//!   (`Archive::member_grant`: the operations that last set their `active` flag and the roles
//!   that log in; another role written leaves it as it was). Every
//!   request re-reads the member from the school document, so a deactivated member, one who
//!   lost the role, or one whose roles were written again since (a role taken away and given
//!   back, even with no request in between) is out at once and logs in again.
//! - Every form carries the session's CSRF token (the login form a token that is also in a
//!   cookie of its own), compared on the server before anything is done.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shouwang_core::forms::MAX_MEMBER_NAME_CHARS;
use shouwang_core::roles::Role;
use shouwang_core::school::Member;
use shouwang_core::{Archive, Error};

use crate::html::{self, esc};
use crate::login_gate::Entry;
use crate::{Ctx, Office, OfficeError, PostedForm, Who, now};

/// The session cookie.
pub const SESSION_COOKIE: &str = "sw_session";
/// The login form's CSRF cookie.
pub const LOGIN_COOKIE: &str = "sw_login";
/// The prefix of the cookies naming a browser a member logged in from ([`browser_cookie`]):
/// exempt from the lock-outs others' failures cause.
pub const BROWSER_COOKIE: &str = "sw_browser_";
/// How long a browser stays known after the login that made it known, in seconds.
pub const BROWSER_SECONDS: i64 = 180 * 86_400;
/// The browsers kept per member (the oldest go first).
pub const BROWSERS_PER_MEMBER: i64 = 10;
/// Failures that lock a member (or a name no member has) from an address.
pub const LOCK_FAILURES: i64 = 5;
/// Failures, from every address together, that lock a member everywhere: an attacker who
/// changes addresses (another computer, a new IPv6 address) gets no more guesses than this.
pub const MEMBER_LOCK_FAILURES: i64 = 30;
/// How long failures count, and how long a lock lasts, in seconds.
pub const LOCK_SECONDS: i64 = 15 * 60;
/// How long a session lasts at most, in seconds, however much it is used.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// How long a session lasts without a request, in seconds: a browser left open on a shared
/// office computer is logged out.
pub const IDLE_SECONDS: i64 = 30 * 60;
/// A session's last use is written at most this often, in seconds, so that pages opened one
/// after another do not each cost a write to `hub.db`.
const SEEN_EVERY: i64 = 60;
/// The largest body the login, logout and password forms are read with, in bytes: a name of
/// [`MAX_MEMBER_NAME_CHARS`] and a password of [`MAX_PASSWORD_CHARS`], percent-encoded, fit several
/// times. A larger one is refused before it is read whole.
pub const LOGIN_BODY_LIMIT: usize = 16 * 1024;
/// Password checks (argon2, about 19 MiB and tens of milliseconds each) run at once; more wait.
pub const PASSWORD_CHECKS: usize = 2;
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted.
pub const MAX_PASSWORD_CHARS: usize = 200;

/// The roles that log in to the console: those that hold the archive together.
pub const LOGIN_ROLES: [Role; 3] = [Role::Leadership, Role::Archivist, Role::HeadTeacher];

/// Whether `member` may log in to the console ([`LOGIN_ROLES`]).
pub fn may_log_in(member: &Member) -> bool {
    member.active && member.roles.iter().any(|r| LOGIN_ROLES.contains(r))
}

/// The cookie naming a browser `member` logged in from: one per member, so that members
/// sharing a browser (the office's computer) each keep theirs. Named by a hash of the
/// member's id, not the id.
pub fn browser_cookie(member: &str) -> String {
    format!("{BROWSER_COOKIE}{}", &digest(member)[..12])
}

/// Sets (or replaces) the console password of the member named `member` (name or id), and
/// ends their sessions. Returns the member.
pub fn set_password(archive: &mut Archive, member: &str, password: &str) -> Result<Member, Error> {
    let m = archive.find_member(member)?;
    if !may_log_in(&m) {
        return Err(Error::NotPermitted(format!(
            "{}（{}）不能登录办公室网页：只有校长/领导组、档案管理员和班主任可以",
            m.name,
            m.role_labels()
        )));
    }
    store_password(archive, &m, password, None, None)?;
    Ok(m)
}

/// Refuses a password too short, too long, with control characters, or guessable
/// ([`crate::guessable`]).
fn check_new_password(password: &str) -> Result<(), Error> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            "密码",
            format!("至少 {MIN_PASSWORD_CHARS} 个字符"),
        ));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS || password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "密码",
            format!("不能超过 {MAX_PASSWORD_CHARS} 个字符，也不能含控制字符"),
        ));
    }
    if let Some(why) = crate::guessable::why_guessable(password) {
        return Err(Error::invalid("密码", why));
    }
    Ok(())
}

/// Checks `password`, stores its hash for `m`, and ends `m`'s sessions except the one whose
/// token hashes to `keep`.
fn store_password(
    archive: &mut Archive,
    m: &Member,
    password: &str,
    keep: Option<&str>,
    keep_browser: Option<&str>,
) -> Result<(), Error> {
    check_new_password(password)?;
    let hash = hash_password(password)?;
    let conn = archive.store().conn();
    conn.execute(
        "INSERT INTO office_passwords (member_id, hash, set_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (member_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
        params![m.id.as_str(), hash, now()],
    )?;
    conn.execute(
        "DELETE FROM office_sessions WHERE member_id = ?1 AND token_hash IS NOT ?2",
        params![m.id.as_str(), keep],
    )?;
    // A password set anew: the browsers that knew the old one are not vouched for any more,
    // but the one she changes it in herself.
    conn.execute(
        "DELETE FROM office_browsers WHERE member_id = ?1 AND token_hash IS NOT ?2",
        params![m.id.as_str(), keep_browser],
    )?;
    Ok(())
}

/// An argon2id hash of `password` with a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::invalid("密码", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid("密码", e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, verified for unknown names so that they take as long.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_hex()).unwrap_or_default())
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The member a request is for, with their session's CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub member: Member,
    pub csrf: String,
    /// Whether the member administers the school (sees every child, members, reports).
    pub admin: bool,
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), OfficeError> {
        if same(&self.csrf, token.trim()) {
            Ok(())
        } else {
            Err(OfficeError::Csrf)
        }
    }

    /// Refuses a member who does not administer the school a page.
    pub fn require_admin(&self) -> Result<(), OfficeError> {
        self.require_admin_to("查看这一页")
    }

    /// Refuses a member who does not administer the school; `what` is what they tried
    /// (`查看这一页`, `做这项修改`).
    pub fn require_admin_to(&self, what: &str) -> Result<(), OfficeError> {
        if self.admin {
            Ok(())
        } else {
            Err(OfficeError::Forbidden(format!(
                "{}（{}）不能{what}：需要校长/领导组或档案管理员",
                self.member.name,
                self.member.role_labels()
            )))
        }
    }
}

/// Ends every console session of `member`.
pub(crate) fn end_sessions(
    archive: &mut Archive,
    member: &shouwang_core::ids::MemberId,
) -> Result<(), OfficeError> {
    archive.store().conn().execute(
        "DELETE FROM office_sessions WHERE member_id = ?1",
        [member.as_str()],
    )?;
    Ok(())
}

/// The member whose session the request carries; [`OfficeError::NotLoggedIn`] if none is valid.
/// A session past its expiry or idle for [`IDLE_SECONDS`] ends; one in use has its last use
/// moved to now (at most every [`SEEN_EVERY`] seconds).
pub(crate) fn viewer(archive: &mut Archive, ctx: &Ctx) -> Result<Viewer, OfficeError> {
    let token = ctx.cookie(SESSION_COOKIE).ok_or(OfficeError::NotLoggedIn)?;
    let token_hash = digest(&token);
    let t = now();
    let found: Option<(String, String, String, i64, i64)> = archive
        .store()
        .conn()
        .query_row(
            "SELECT member_id, csrf, standing, expires, last_seen FROM office_sessions WHERE token_hash = ?1",
            [&token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let (member_id, csrf, standing, expires, last_seen) = found.ok_or(OfficeError::NotLoggedIn)?;
    if expires <= t || last_seen <= t - IDLE_SECONDS {
        archive.store().conn().execute(
            "DELETE FROM office_sessions WHERE token_hash = ?1",
            [&token_hash],
        )?;
        return Err(OfficeError::NotLoggedIn);
    }
    let member_id = shouwang_core::ids::MemberId(member_id);
    let school = archive.school()?;
    let member = school.member(&member_id).filter(|m| may_log_in(m)).cloned();
    // Deactivated, no longer holding a role that logs in, or holding it under another grant
    // than the session was opened under (taken away and given back between two requests):
    // every session of the member ends now.
    let grant = archive.member_grant(&member_id, &LOGIN_ROLES)?;
    let Some(member) = member.filter(|_| grant.as_deref() == Some(standing.as_str())) else {
        end_sessions(archive, &member_id)?;
        return Err(OfficeError::NotLoggedIn);
    };
    if t - last_seen >= SEEN_EVERY {
        archive.store().conn().execute(
            "UPDATE office_sessions SET last_seen = ?2 WHERE token_hash = ?1",
            params![token_hash, t],
        )?;
    }
    let admin = member.roles.iter().any(|r| r.administers());
    Ok(Viewer {
        member,
        csrf,
        admin,
    })
}

/// A cookie for the whole console; without `max_age`, one that lives as long as the browser.
/// Over TLS its name carries the `__Host-` prefix ([`crate::HOST_PREFIX`]).
fn cookie(name: &str, value: &str, max_age: Option<i64>, tls: bool) -> HeaderValue {
    let (prefix, secure) = if tls {
        (crate::HOST_PREFIX, "; Secure")
    } else {
        ("", "")
    };
    let max_age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{prefix}{name}={value}; Path=/; HttpOnly; SameSite=Strict{max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn login_form(token: &str, name: &str, message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<div class=\"error\" role=\"alert\">{}</div>", esc(m)))
        .unwrap_or_default();
    format!(
        "{message}<form method=\"post\" action=\"/login\" class=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\"><label>姓名<input name=\"name\" value=\"{name}\" required autocomplete=\"username\"></label><label>密码<input name=\"password\" type=\"password\" required autocomplete=\"current-password\"></label><button type=\"submit\">登录</button></form><p class=\"hint\">密码由管理员在学校服务器上用 <code>shouwang-relay office-password --member 姓名</code> 设置。</p>",
        token = esc(token),
        name = esc(name),
    )
}

fn login_response(ctx: &Ctx, status: StatusCode, name: &str, message: Option<&str>) -> Response {
    let token = random_hex();
    let mut res = html::bare_page("守望 · 办公室登录", &login_form(&token, name, message));
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie(LOGIN_COOKIE, &token, Some(3600), ctx.tls),
    );
    res
}

/// `GET /login`.
pub(crate) async fn login_page(ctx: Ctx) -> Response {
    login_response(&ctx, StatusCode::OK, "", None)
}

/// The login form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: String,
}

/// What a login attempt came to.
enum Outcome {
    /// A session, and a browser token to set when the browser was not known yet.
    In {
        token: String,
        /// The browser's cookie and token, to set (again) with a fresh lifetime.
        browser: Option<(String, String)>,
    },
    Wrong,
    Locked {
        minutes: i64,
    },
}

/// What a login name longer than any member's is answered (it is not shown back: it may be a
/// password typed into the wrong box).
fn name_too_long() -> String {
    format!("姓名太长了（最多 {MAX_MEMBER_NAME_CHARS} 个字），请检查是不是填错了地方")
}

/// `POST /login`. A form over [`LOGIN_BODY_LIMIT`], or with a name longer than any member's,
/// is refused before the archive is touched; nothing is written for it.
pub(crate) async fn login(
    State(office): State<Office>,
    ctx: Ctx,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejected) => {
            let message = if rejected.status() == StatusCode::PAYLOAD_TOO_LARGE {
                // Refused before it was read: which box was too long is not known.
                format!(
                    "填写的内容太长了（姓名最多 {MAX_MEMBER_NAME_CHARS} 个字，密码最多 {MAX_PASSWORD_CHARS} 个字符），请检查后重新填写"
                )
            } else {
                "登录表单读不出来，请重新填写".to_owned()
            };
            return login_response(&ctx, rejected.status(), "", Some(&message));
        }
    };
    let too_long = form.name.trim().chars().count() > MAX_MEMBER_NAME_CHARS;
    let shown = if too_long { "" } else { form.name.trim() };
    let expected = ctx.cookie(LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, form.csrf.trim()) {
        return login_response(
            &ctx,
            StatusCode::FORBIDDEN,
            shown,
            Some(&OfficeError::Csrf.to_string()),
        );
    }
    if too_long {
        return login_response(&ctx, StatusCode::BAD_REQUEST, "", Some(&name_too_long()));
    }
    let name = form.name.trim().to_owned();
    if name.is_empty() || form.password.is_empty() {
        return login_response(
            &ctx,
            StatusCode::BAD_REQUEST,
            &name,
            Some("请填写姓名和密码"),
        );
    }
    let browsers = ctx.cookies_named_like(BROWSER_COOKIE);
    let presented: Vec<String> = browsers.iter().map(|(_, t)| digest(t)).collect();
    let gate = office.login_gate();
    if !gate.is_loaded() {
        let since = now() - BROWSER_SECONDS;
        match office
            .with_archive(move |a, _| known_browsers(a, since))
            .await
        {
            Ok(browsers) => gate.load(browsers),
            Err(e) => return e.into_response(),
        }
    }
    let _turn = match gate.enter(ctx.source, &presented, std::time::Instant::now()) {
        Entry::Pass(ticket) => ticket,
        Entry::TooFast => {
            return login_response(
                &ctx,
                StatusCode::TOO_MANY_REQUESTS,
                &name,
                Some(&format!(
                    "从这个网络地址一分钟内的登录尝试超过了 {} 次，请一分钟后再试",
                    crate::login_gate::PER_MINUTE
                )),
            );
        }
        Entry::Busy => {
            return login_response(
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                &name,
                Some("服务器正忙，请稍后再试"),
            );
        }
    };
    let source = ctx.source.to_string();
    let outcome = office.log_in(&name, form.password, source, browsers).await;
    match outcome {
        Ok(Outcome::In { token, browser }) => {
            if let Some((_, b)) = &browser {
                gate.trust(digest(b));
            }
            let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                cookie(SESSION_COOKIE, &token, None, ctx.tls),
            );
            if let Some((name, b)) = browser {
                res.headers_mut().append(
                    header::SET_COOKIE,
                    cookie(&name, &b, Some(BROWSER_SECONDS), ctx.tls),
                );
            }
            res.headers_mut().append(
                header::SET_COOKIE,
                cookie(LOGIN_COOKIE, "", Some(0), ctx.tls),
            );
            res
        }
        Ok(Outcome::Wrong) => login_response(
            &ctx,
            StatusCode::UNAUTHORIZED,
            &name,
            Some("姓名或密码不对"),
        ),
        Ok(Outcome::Locked { minutes }) => login_response(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            &name,
            Some(&format!(
                "登录失败次数太多，这个姓名在这台电脑上暂时锁定，请 {minutes} 分钟后再试"
            )),
        ),
        Err(e) => e.into_response(),
    }
}

impl Office {
    /// A login: the lock-out and the member in one turn with the archive, the argon2 check
    /// outside it (at most [`PASSWORD_CHECKS`] at once), the session in a second turn. The
    /// archive is never held while a password is checked, so a flood of logins, each a
    /// deliberately slow check, does not hold up the pages of members logged in.
    async fn log_in(
        &self,
        name: &str,
        password: String,
        source: String,
        browsers: Vec<(String, String)>,
    ) -> Result<Outcome, OfficeError> {
        let n = name.to_owned();
        let (key, member, hash, source) = match self
            .with_archive(move |a, _| begin_attempt(a, &n, &source, &browsers))
            .await?
        {
            Begun::Locked { minutes } => return Ok(Outcome::Locked { minutes }),
            Begun::Check {
                key,
                member,
                hash,
                source,
            } => (key, member.map(|m| *m), hash, source),
        };
        let checked = hash.clone();
        let matched = self
            .check_password(move || password_matches(checked.as_deref(), &password))
            .await?;
        self.with_archive(move |a, _| finish_attempt(a, &key, member, hash, matched, &source))
            .await
    }
}

/// A login's first turn with the archive: the lock-out, the member and their stored hash.
/// The attempt is counted as a failure now, before the password is checked, so that logins
/// checked at the same time all see each other's count; [`finish_attempt`] takes it back when
/// the password was right.
enum Begun {
    Locked {
        minutes: i64,
    },
    Check {
        key: String,
        member: Option<Box<Member>>,
        hash: Option<String>,
        /// What the attempt counts under: the address, or the member's known browser.
        source: Source,
    },
}

/// What a login attempt's failures count under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The address the request came from.
    Address(String),
    /// A browser the member logged in from before (its token, and the token's hash): counted
    /// and locked on its own, never by the failures of others.
    Browser { token: String, hash: String },
}

impl Source {
    /// As stored in `office_failures.source`.
    fn key(&self) -> String {
        match self {
            Source::Address(a) => a.clone(),
            Source::Browser { hash, .. } => format!("browser:{hash}"),
        }
    }

    /// The attempt's source: the member's known browser, if the request carries her cookie
    /// ([`browser_cookie`]: one look-up, whatever else it carries), else its address.
    fn of(
        a: &mut Archive,
        key: &str,
        address: &str,
        browsers: &[(String, String)],
    ) -> Result<Source, OfficeError> {
        let name = browser_cookie(key);
        if let Some((_, token)) = browsers.iter().find(|(n, _)| *n == name) {
            let hash = digest(token);
            if known_browser(a, key, &hash)? {
                return Ok(Source::Browser {
                    token: token.clone(),
                    hash,
                });
            }
        }
        Ok(Source::Address(address.to_owned()))
    }
}

fn begin_attempt(
    a: &mut Archive,
    name: &str,
    source: &str,
    browsers: &[(String, String)],
) -> Result<Begun, OfficeError> {
    let key = failure_key(a, name);
    let source = Source::of(a, &key, source, browsers)?;
    if let Some(minutes) = locked(a, &key, &source)? {
        return Ok(Begun::Locked { minutes });
    }
    let member = a.find_member(name).ok().filter(may_log_in);
    let hash = match &member {
        Some(m) => stored_hash(a, m)?,
        None => None,
    };
    record_failure(a, &key, &source)?;
    Ok(Begun::Check {
        key,
        member: member.map(Box::new),
        hash,
        source,
    })
}

/// The browsers members logged in with since `since` (their tokens' hashes, oldest first).
fn known_browsers(a: &mut Archive, since: i64) -> Result<Vec<String>, OfficeError> {
    let conn = a.store().conn();
    let mut stmt =
        conn.prepare("SELECT token_hash FROM office_browsers WHERE created > ?1 ORDER BY created")?;
    let rows = stmt
        .query_map([since], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Whether the browser token hashing to `hash` is one the member `key` ([`failure_key`])
/// logged in from, within [`BROWSER_SECONDS`].
fn known_browser(a: &mut Archive, key: &str, hash: &str) -> Result<bool, OfficeError> {
    Ok(a.store()
        .conn()
        .query_row(
            "SELECT 1 FROM office_browsers WHERE token_hash = ?1 AND member_id = ?2 AND created > ?3",
            params![hash, key, now() - BROWSER_SECONDS],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether the password checks against the hash [`begin_attempt`] found (the decoy when there
/// was none, so that an unknown name takes as long).
fn password_matches(hash: Option<&str>, password: &str) -> bool {
    match hash {
        Some(h) => verify_password(h, password),
        None => {
            let _ = verify_password(decoy_hash(), password);
            false
        }
    }
}

/// A login's second turn: with a right password, and the member still allowed in under the
/// same hash, the failure counted first is taken back with this address's others and a
/// session opens; otherwise the failure stands.
fn finish_attempt(
    a: &mut Archive,
    key: &str,
    member: Option<Member>,
    hash: Option<String>,
    matched: bool,
    source: &Source,
) -> Result<Outcome, OfficeError> {
    let t = now();
    // Looked up only after a right password, so that a wrong one takes the same path whether
    // or not the name is a member's.
    let still = matched
        && match (&member, &hash) {
            (Some(m), Some(h)) => {
                a.find_member(m.id.as_str())
                    .ok()
                    .filter(may_log_in)
                    .is_some()
                    && stored_hash(a, m)?.as_deref() == Some(h.as_str())
            }
            _ => false,
        };
    match member {
        Some(m) if still => {
            let conn = a.store().conn();
            conn.execute(
                "DELETE FROM office_failures WHERE member_key = ?1 AND source = ?2",
                params![key, source.key()],
            )?;
            // A browser not known yet becomes known, and a known one stays known for
            // another [`BROWSER_SECONDS`]: the lock-outs others cause do not keep the member
            // out of it. (Its cookie is sent again either way, with a fresh lifetime.)
            conn.execute(
                "DELETE FROM office_browsers WHERE created <= ?1",
                [t - BROWSER_SECONDS],
            )?;
            let token = match source {
                Source::Browser { token, hash }
                    if conn.execute(
                        "UPDATE office_browsers SET created = ?2 WHERE token_hash = ?1",
                        params![hash, t],
                    )? == 1 =>
                {
                    token.clone()
                }
                // A browser not known yet, or no longer (its row expired since the attempt
                // began): a new token.
                _ => {
                    let b = random_hex();
                    conn.execute(
                        "INSERT INTO office_browsers (token_hash, member_id, created) VALUES (?1, ?2, ?3)",
                        params![digest(&b), m.id.as_str(), t],
                    )?;
                    conn.execute(
                        "DELETE FROM office_browsers WHERE member_id = ?1 AND token_hash NOT IN
                             (SELECT token_hash FROM office_browsers WHERE member_id = ?1
                              ORDER BY created DESC, rowid DESC LIMIT ?2)",
                        params![m.id.as_str(), BROWSERS_PER_MEMBER],
                    )?;
                    b
                }
            };
            let browser = Some((browser_cookie(m.id.as_str()), token));
            conn.execute(
                "DELETE FROM office_sessions WHERE expires <= ?1 OR last_seen <= ?2",
                [t, t - IDLE_SECONDS],
            )?;
            let token = random_hex();
            let standing = a.member_grant(&m.id, &LOGIN_ROLES)?.unwrap_or_default();
            a.store().conn().execute(
                "INSERT INTO office_sessions (token_hash, member_id, csrf, created, expires, standing, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4)",
                params![digest(&token), m.id.as_str(), random_hex(), t, t + SESSION_SECONDS, standing],
            )?;
            tracing::info!(member = %m.id, "office login");
            Ok(Outcome::In { token, browser })
        }
        _ => {
            tracing::info!(source = source.key(), "office login failed");
            Ok(Outcome::Wrong)
        }
    }
}

/// A whole login on one thread: [`begin_attempt`], the check, [`finish_attempt`] (the
/// console runs the check between two turns with the archive, see [`login`]).
#[cfg(test)]
fn attempt(
    a: &mut Archive,
    name: &str,
    password: &str,
    source: &str,
    browser: Option<&str>,
) -> Result<Outcome, OfficeError> {
    let key = failure_key(a, name);
    let browsers: Vec<(String, String)> = browser
        .into_iter()
        .map(|t| (browser_cookie(&key), t.to_owned()))
        .collect();
    match begin_attempt(a, name, source, &browsers)? {
        Begun::Locked { minutes } => Ok(Outcome::Locked { minutes }),
        Begun::Check {
            key,
            member,
            hash,
            source,
        } => {
            let matched = password_matches(hash.as_deref(), password);
            finish_attempt(a, &key, member.map(|m| *m), hash, matched, &source)
        }
    }
}

/// What failed logins are counted by: the member a typed name or id resolves to (so that a
/// member's name and id share one count), or, if it is nobody's, [`name_key`] of the name: what
/// was typed (a password in the wrong box, say) is never stored.
fn failure_key(a: &mut Archive, name: &str) -> String {
    a.find_member(name)
        .map_or_else(|_| name_key(name), |m| m.id.to_string())
}

/// `name:` and the HMAC-SHA256 of the trimmed `name` under a key drawn at random once per
/// process: the same name counts together while the hub runs, and neither `hub.db` nor a
/// backup of it tells what was typed, not even to someone trying a list of names. A restart
/// forgets the failures of names that are nobody's, which would lapse in 15 minutes anyway.
fn name_key(name: &str) -> String {
    static KEY: OnceLock<[u8; 64]> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut k = [0u8; 64];
        rand::rng().fill_bytes(&mut k);
        k
    });
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(key.into());
    mac.update(name.trim().as_bytes());
    format!("name:{}", hex::encode(mac.finalize().into_bytes()))
}

/// Minutes left of the lock on `key` ([`failure_key`]) from `source`, or, for an address,
/// from every address once [`MEMBER_LOCK_FAILURES`] came from all of them together, if it is
/// locked (forgetting failures older than the window first). A browser the member logged in
/// from is locked by its own failures only.
fn locked(a: &mut Archive, key: &str, source: &Source) -> Result<Option<i64>, OfficeError> {
    let t = now();
    let conn = a.store().conn();
    conn.execute(
        "DELETE FROM office_failures WHERE at <= ?1",
        [t - LOCK_SECONDS],
    )?;
    let (here, last_here, everywhere, last): (i64, Option<i64>, i64, Option<i64>) = conn
        .query_row(
        "SELECT count(CASE WHEN source = ?2 THEN 1 END), max(CASE WHEN source = ?2 THEN at END),
                    count(CASE WHEN source NOT LIKE 'browser:%' THEN 1 END),
                    max(CASE WHEN source NOT LIKE 'browser:%' THEN at END)
             FROM office_failures WHERE member_key = ?1 AND at > ?3",
        params![key, source.key(), t - LOCK_SECONDS],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let minutes = |last: Option<i64>| {
        let left = last.unwrap_or(t) + LOCK_SECONDS - t;
        (left + 59).div_euclid(60).max(1)
    };
    Ok(match source {
        _ if here >= LOCK_FAILURES => Some(minutes(last_here)),
        Source::Address(_) if everywhere >= MEMBER_LOCK_FAILURES => Some(minutes(last)),
        _ => None,
    })
}

/// The stored password hash of `m`, if they have one.
fn stored_hash(a: &mut Archive, m: &Member) -> Result<Option<String>, OfficeError> {
    Ok(a.store()
        .conn()
        .query_row(
            "SELECT hash FROM office_passwords WHERE member_id = ?1",
            [m.id.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Counts a failed login for `key` ([`failure_key`]) from `source`.
fn record_failure(a: &mut Archive, key: &str, source: &Source) -> Result<(), OfficeError> {
    a.store().conn().execute(
        "INSERT INTO office_failures (member_key, source, at) VALUES (?1, ?2, ?3)",
        params![key, source.key(), now()],
    )?;
    Ok(())
}

/// A form with no fields of its own (logout).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /logout`: ends the session (its CSRF token checked).
pub(crate) async fn logout(
    State(office): State<Office>,
    ctx: Ctx,
    PostedForm(form): PostedForm<NoFields>,
) -> Result<Response, OfficeError> {
    let token = ctx.cookie(SESSION_COOKIE).unwrap_or_default();
    let tls = ctx.tls;
    office
        .post_form(ctx, Who::Member, form, move |a, _, _, _| {
            a.store().conn().execute(
                "DELETE FROM office_sessions WHERE token_hash = ?1",
                [digest(&token)],
            )?;
            Ok(())
        })
        .await?;
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0), tls));
    Ok(res)
}

/// `GET /password`: the form to change one's own password.
pub(crate) async fn password_page(
    State(office): State<Office>,
    ctx: Ctx,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let school = a.school()?;
            let body = format!(
                "<form method=\"post\" action=\"/password\" class=\"login\">{}<label>当前密码<input name=\"current\" type=\"password\" required autocomplete=\"current-password\"></label><label>新密码（至少 {MIN_PASSWORD_CHARS} 个字符）<input name=\"new\" type=\"password\" required autocomplete=\"new-password\"></label><label>再输一次新密码<input name=\"again\" type=\"password\" required autocomplete=\"new-password\"></label><button type=\"submit\">修改密码</button></form><p class=\"hint\">修改后，你在其他电脑或浏览器上的登录会退出，这里的登录保留。</p>",
                html::csrf_field(&v.csrf)
            );
            Ok(html::page(&v, &school.name, "修改密码", "/password", &body))
        })
        .await
}

/// The change-password form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new: String,
    again: String,
}

/// Where a request that asks for the member's password again came from: her address and the
/// browser cookies it carries (her own browser is locked on its own failures only).
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    address: String,
    browsers: Vec<(String, String)>,
}

impl Asked {
    pub(crate) fn of(ctx: &Ctx) -> Asked {
        Asked {
            address: ctx.source.to_string(),
            browsers: ctx.cookies_named_like(BROWSER_COOKIE),
        }
    }

    /// Checks `typed` against the logged-in member's password, as a login does: refused while
    /// locked out, and a wrong one counts towards the lock-out. Returns where it came from.
    pub(crate) fn confirm(
        &self,
        a: &mut Archive,
        v: &Viewer,
        typed: &str,
    ) -> Result<Source, OfficeError> {
        let key = v.member.id.to_string();
        let source = Source::of(a, &key, &self.address, &self.browsers)?;
        if let Some(minutes) = locked(a, &key, &source)? {
            return Err(OfficeError::Forbidden(format!(
                "密码错误次数太多，请 {minutes} 分钟后再试，没有做任何改动"
            )));
        }
        if !stored_hash(a, &v.member)?.is_some_and(|h| verify_password(&h, typed)) {
            record_failure(a, &key, &source)?;
            return Err(OfficeError::Forbidden(
                "当前密码不对，没有做任何改动".into(),
            ));
        }
        Ok(source)
    }
}

/// `POST /password`: the logged-in member's own password, the current one checked first (a
/// wrong one counts towards the lock-out as a failed login does); the member's other
/// sessions end, this one goes on.
pub(crate) async fn change_password(
    State(office): State<Office>,
    ctx: Ctx,
    PostedForm(form): PostedForm<PasswordForm>,
) -> Result<Response, OfficeError> {
    let keep = ctx.cookie(SESSION_COOKIE).map(|t| digest(&t));
    let asked = Asked::of(&ctx);
    office
        .post_form(ctx, Who::Member, form, move |a, _, v, f| {
            let source = asked.confirm(a, v, &f.current)?;
            if f.new != f.again {
                return Err(OfficeError::BadInput(
                    "两次输入的新密码不一致，没有做任何改动".into(),
                ));
            }
            let keep_browser = match &source {
                Source::Browser { hash, .. } => Some(hash.as_str()),
                Source::Address(_) => None,
            };
            store_password(a, &v.member, &f.new, keep.as_deref(), keep_browser)?;
            tracing::info!(member = %v.member.id, "office: password changed");
            let school = a.school()?;
            Ok(html::page(
                v,
                &school.name,
                "修改密码",
                "/password",
                "<div class=\"notice\">已修改密码。你在其他电脑或浏览器上的登录已退出。</div><p><a href=\"/\">回到概览</a></p>",
            ))
        })
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_password_verifies_and_a_wrong_one_does_not() {
        let h = hash_password("长友的密码2026").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "长友的密码2026"));
        assert!(!verify_password(&h, "长友的密码2025"));
        assert!(!verify_password("not a hash", "x"));
        // A fresh salt every time.
        assert_ne!(h, hash_password("长友的密码2026").unwrap());
    }

    /// A member's failed logins count together whether her name or her id was typed, and
    /// from every address together past [`MEMBER_LOCK_FAILURES`]; another member is not
    /// locked by them.
    #[test]
    fn failures_count_by_member_and_across_addresses() {
        use shouwang_core::roles::Role;

        let dir = tempfile::tempdir().unwrap();
        let mut a = crate::tests::hub_archive(&dir.path().join("hub.db"));
        let right = "郭庄小学2026办公室";
        let admin = set_password(&mut a, "张长友", right).unwrap();
        a.add_member("王瑞侠", &[Role::HeadTeacher], None, None)
            .unwrap();
        set_password(&mut a, "王瑞侠", right).unwrap();
        let id = admin.id.to_string();
        let is_locked = |o: Outcome| matches!(o, Outcome::Locked { .. });

        for name in ["张长友", id.as_str(), " 张长友 ", id.as_str(), "张长友"] {
            let o = attempt(&mut a, name, "guess", "10.0.0.5", None).unwrap();
            assert!(matches!(o, Outcome::Wrong));
        }
        assert!(is_locked(
            attempt(&mut a, &id, right, "10.0.0.5", None).unwrap()
        ));
        assert!(matches!(
            attempt(&mut a, "张长友", right, "10.0.0.6", None).unwrap(),
            Outcome::In { .. }
        ));

        // A new address for every five guesses: locked everywhere at the member's limit.
        let mut guesses = LOCK_FAILURES;
        let mut address = 10;
        while guesses < MEMBER_LOCK_FAILURES {
            let source = format!("10.0.1.{address}");
            for _ in 0..LOCK_FAILURES {
                let o = attempt(&mut a, "张长友", "guess", &source, None).unwrap();
                assert!(matches!(o, Outcome::Wrong), "locked after {guesses}");
                guesses += 1;
            }
            address += 1;
        }
        assert!(is_locked(
            attempt(&mut a, "张长友", right, "10.0.9.9", None).unwrap()
        ));
        assert!(matches!(
            attempt(&mut a, "王瑞侠", right, "10.0.9.9", None).unwrap(),
            Outcome::In { .. }
        ));
    }

    /// A browser the member logged in from before is not locked out by others' failures: an
    /// attacker on the school's network fails logins in the 校长's name from many addresses
    /// until she is locked everywhere, yet the browser on her office computer still logs in
    /// with her password. That browser is locked by its own wrong passwords only; a token
    /// that is not hers (made up, or another member's) counts as no browser; setting her
    /// password again forgets her browsers.
    #[test]
    fn a_browser_the_member_logged_in_from_is_not_locked_out_by_others() {
        use shouwang_core::roles::Role;

        let dir = tempfile::tempdir().unwrap();
        let mut a = crate::tests::hub_archive(&dir.path().join("hub.db"));
        let right = "郭庄小学2026办公室";
        set_password(&mut a, "张长友", right).unwrap();
        a.add_member("王瑞侠", &[Role::HeadTeacher], None, None)
            .unwrap();
        set_password(&mut a, "王瑞侠", right).unwrap();
        let browser_of = |o: Outcome| match o {
            Outcome::In {
                browser: Some((_, b)),
                ..
            } => b,
            _ => panic!("not logged in"),
        };
        let hers = browser_of(attempt(&mut a, "张长友", right, "10.0.0.5", None).unwrap());
        let his = browser_of(attempt(&mut a, "王瑞侠", right, "10.0.0.7", None).unwrap());
        let is_locked = |o: Outcome| matches!(o, Outcome::Locked { .. });

        // Five guesses from each of six addresses, one of them her office's.
        for address in 0..MEMBER_LOCK_FAILURES / LOCK_FAILURES {
            let source = if address == 0 {
                "10.0.0.5".to_owned()
            } else {
                format!("10.0.1.{address}")
            };
            for _ in 0..LOCK_FAILURES {
                attempt(&mut a, "张长友", "guess", &source, None).unwrap();
            }
        }
        assert!(is_locked(
            attempt(&mut a, "张长友", right, "10.0.9.9", None).unwrap()
        ));
        for cookie in ["0123456789abcdef", his.as_str()] {
            assert!(is_locked(
                attempt(&mut a, "张长友", right, "10.0.0.5", Some(cookie)).unwrap()
            ));
        }
        let again = attempt(&mut a, "张长友", right, "10.0.0.5", Some(&hers)).unwrap();
        assert!(
            matches!(&again, Outcome::In { browser: Some((_, b)), .. } if *b == hers),
            "her own browser is locked out by others' guesses"
        );

        // Her browser's own wrong passwords lock it.
        for _ in 0..LOCK_FAILURES {
            let o = attempt(&mut a, "张长友", "guess", "10.0.0.5", Some(&hers)).unwrap();
            assert!(matches!(o, Outcome::Wrong));
        }
        assert!(is_locked(
            attempt(&mut a, "张长友", right, "10.0.0.5", Some(&hers)).unwrap()
        ));

        // A password set anew forgets her browsers.
        let mut a2 = crate::tests::hub_archive(&dir.path().join("hub2.db"));
        set_password(&mut a2, "张长友", right).unwrap();
        let b = browser_of(attempt(&mut a2, "张长友", right, "10.0.0.5", None).unwrap());
        set_password(&mut a2, "张长友", "郭庄小学2027办公室").unwrap();
        let after = browser_of(
            attempt(
                &mut a2,
                "张长友",
                "郭庄小学2027办公室",
                "10.0.0.5",
                Some(&b),
            )
            .unwrap(),
        );
        assert_ne!(
            after, b,
            "a browser known before the password was set again"
        );
    }

    /// A name typed at the login that is nobody's (a password typed into the wrong box, say)
    /// is counted for the lock-out without being stored: after the failed login, neither
    /// `hub.db` nor its WAL holds its bytes, and five such failures still lock it.
    #[test]
    fn a_failed_login_under_an_unknown_name_leaves_no_trace_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        drop(crate::tests::hub_archive(&path));
        let console = crate::tests::Console::start(&path);
        let failures = || -> i64 {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("SELECT count(*) FROM office_failures", [], |r| r.get(0))
                .unwrap()
        };
        let typed = "我的密码Qz7-2026";
        let r = console.login(typed, "随便什么");
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("姓名或密码不对"), "{}", r.body);
        assert_eq!(failures(), 1, "the attempt is counted");
        for file in ["hub.db", "hub.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(typed.len()).any(|w| w == typed.as_bytes()),
                "{file} holds the name as typed"
            );
        }
        for _ in 1..LOCK_FAILURES {
            assert_eq!(console.login(typed, "随便什么").status, 401);
        }
        assert_eq!(console.login(typed, "随便什么").status, 429);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
