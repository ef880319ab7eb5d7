//! 守望 office console: the school hub's web pages for the people who hold the archive
//! together (校长/领导组, 档案管理员, and 班主任 for their own classes).
//!
//! Server-rendered zh-CN HTML, every asset embedded (the school LAN has no internet). The
//! hub's archive is the only data source: [`Office::router`] gives the routes `shouwang-relay
//! serve` mounts on its HTTP port, and the hub lends what the console needs through [`Hub`]
//! (opening its archive, issuing invites).
//!
//! Who may do what is decided on the server for every request: a session names a member
//! ([`auth`]), every read goes through [`shouwang_core::archive::OnBehalf`] (the core's scope
//! rules applied to that member), and every write through the core's ordinary paths as that
//! member (`Archive::write_as_member`: under the member's own console device). Module
//! map: `auth` (passwords, sessions, lock-out, CSRF), `html` (layout and escaping), `chart`
//! (inline SVG), `overview` (概览), `students` (学生), `conflicts` (冲突), `members` (成员与设备,
//! invites with QR codes), `reports` (报表, .xlsx), `audit` (查阅记录), `review` (待核实: changes
//! the trust rules refused or listed).

mod audit;
pub mod auth;
mod chart;
mod conflicts;
mod error;
mod guessable;
mod html;
pub mod login_gate;
mod members;
mod overview;
pub mod reports;
mod review;
mod students;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Form;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shouwang_core::roles::Role;
use shouwang_core::{Archive, Error};

pub use error::OfficeError;

/// What the hub lends the console.
pub trait Hub: Send + Sync + 'static {
    /// Opens the hub's archive (`hub.db`, with the data key).
    fn open_archive(&self) -> Result<Archive, Error>;
    /// Issues an invite for `member` (a name; added to the school with `role` if new), valid
    /// for `days`, with the hub's reachable addresses in it.
    fn invite(&self, member: &str, role: Option<Role>, days: u32) -> Result<Ticket, Error>;
}

/// An invite just issued by the hub.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The text ticket (`shouwang1…`), also drawn as a QR code.
    pub ticket: String,
    /// The member it enrolls a device for.
    pub member: shouwang_core::ids::MemberId,
    pub member_name: String,
    pub role: Role,
    /// Whether the member was added to the school for it.
    pub member_added: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The console: the hub, and the one archive its requests take turns with (a school office
/// has a handful of users; the store sees what the hub's conversations write).
#[derive(Clone)]
pub struct Office {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Box<dyn Hub>,
    archive: Mutex<Option<Archive>>,
    /// Taken before a request goes to the blocking pool: requests waiting for the archive wait
    /// here, as tasks, not on the blocking pool, which the hub's sync conversations share (a
    /// flood of logins, each an argon2 check, held every blocking thread waiting for the
    /// archive and stalled every phone's sync).
    turn: Arc<tokio::sync::Semaphore>,
    /// Taken by a password check ([`auth::PASSWORD_CHECKS`] at once), which runs outside the
    /// archive's turn.
    checks: Arc<tokio::sync::Semaphore>,
    /// What a login may cost before the archive or a password check (`login_gate`).
    logins: login_gate::LoginGate,
}

impl std::fmt::Debug for Office {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Office").finish_non_exhaustive()
    }
}

impl Office {
    /// A console over `hub`.
    pub fn new(hub: impl Hub) -> Office {
        Office {
            inner: Arc::new(Inner {
                hub: Box::new(hub),
                archive: Mutex::new(None),
                turn: Arc::new(tokio::sync::Semaphore::new(1)),
                checks: Arc::new(tokio::sync::Semaphore::new(auth::PASSWORD_CHECKS)),
                logins: login_gate::LoginGate::default(),
            }),
        }
    }

    /// The console's routes (`/`, `/login`, `/students`, …), to merge into the hub's router.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/", get(overview::page))
            // The login (which anyone may post to), logout and password forms are small: their
            // bodies are read up to `LOGIN_BODY_LIMIT`. The other forms up to `FORM_BODY_LIMIT`
            // (resolving a conflict in a note posts up to 5,000 characters).
            .route(
                "/login",
                get(auth::login_page)
                    .post(auth::login)
                    .layer(DefaultBodyLimit::max(auth::LOGIN_BODY_LIMIT)),
            )
            .route(
                "/logout",
                post(auth::logout).layer(DefaultBodyLimit::max(auth::LOGIN_BODY_LIMIT)),
            )
            .route("/students", get(students::list))
            .route("/students/{id}", get(students::file))
            .route("/students/{id}/reveal", post(students::reveal))
            .route("/conflicts", get(conflicts::list))
            .route(
                "/conflicts/resolve",
                action(Who::Member, conflicts::resolve),
            )
            .route("/members", get(members::page))
            .route("/members/invite", post(members::post_invite))
            .route("/members/add", action(Who::Admin, members::add_member))
            .route("/members/class", action(Who::Admin, members::add_class))
            .route("/members/pair", action(Who::Admin, members::pair))
            .route("/members/unpair", action(Who::Admin, members::unpair))
            .route("/members/head", action(Who::Admin, members::class_head))
            .route(
                "/members/deactivate",
                action(Who::Admin, members::deactivate),
            )
            .route(
                "/password",
                get(auth::password_page)
                    .post(auth::change_password)
                    .layer(DefaultBodyLimit::max(auth::LOGIN_BODY_LIMIT)),
            )
            .route("/reports", get(reports::page))
            .route("/audit", get(audit::page))
            .route("/review", get(review::page))
            .route("/reports/{name}", get(reports::download))
            .route("/reports/{name}/reveal", post(reports::reveal))
            .route("/print/{id}", get(students::print))
            .route("/assets/style.css", get(style))
            .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
            .layer(axum::middleware::from_fn(security_headers))
            .with_state(self.clone())
    }

    /// The login's gate in memory (`login_gate`).
    pub(crate) fn login_gate(&self) -> &login_gate::LoginGate {
        &self.inner.logins
    }

    /// Runs `f` with the archive on tokio's blocking pool (opening it on first use), one request
    /// at a time: the others wait for their turn before they take a blocking thread. A failed
    /// storage call closes it, so the next request opens it afresh.
    pub(crate) async fn with_archive<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Archive, &dyn Hub) -> Result<T, OfficeError> + Send + 'static,
    ) -> Result<T, OfficeError> {
        // Held by the blocking task itself: a request given up meanwhile (the browser closed)
        // does not let the next one onto the pool while its work still runs.
        let turn = self
            .inner
            .turn
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| OfficeError::Internal(CLOSED.into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut slot = inner.archive.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(inner.hub.open_archive()?);
            }
            let Some(archive) = slot.as_mut() else {
                return Err(OfficeError::Internal("档案库没有打开".into()));
            };
            let out = f(archive, inner.hub.as_ref());
            if let Err(OfficeError::Core(e)) = &out
                && matches!(**e, Error::Storage(_) | Error::Io(_))
            {
                *slot = None;
            }
            out
        })
        .await
        .map_err(|e| OfficeError::Internal(e.to_string()))?
    }
}

/// What a request that comes while the console closes is answered.
const CLOSED: &str = "服务器正在关闭，请稍后再试";

impl Office {
    /// Closes the console's archive once the request using it is done; requests after it are
    /// answered [`CLOSED`]. The server calls it when it shuts down, so that it returns with
    /// `hub.db` closed (a request given up by its browser may still be running its work).
    pub async fn close(&self) {
        let turn = self.inner.turn.clone();
        let Ok(permit) = turn.clone().acquire_owned().await else {
            return; // closed already
        };
        turn.close();
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner
                .archive
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        })
        .await;
    }

    /// Runs a password check on tokio's blocking pool, at most [`auth::PASSWORD_CHECKS`] at
    /// once, without the archive.
    pub(crate) async fn check_password(
        &self,
        check: impl FnOnce() -> bool + Send + 'static,
    ) -> Result<bool, OfficeError> {
        let permit = self
            .inner
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| OfficeError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check()
        })
        .await
        .map_err(|e| OfficeError::Internal(e.to_string()))
    }
}

/// Who may post a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// Any member logged in (the core's rules still apply to what they do).
    Member,
    /// Administrators only (校长/领导组, 档案管理员).
    Admin,
}

/// A posted form: the session's CSRF token beside the form's own fields.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Posted<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// The most a form other than the login's may post: a 5,000-character note, percent-encoded
/// (9 bytes a character), with room to spare. Read before the session is checked, so anyone
/// on the network can send it: axum's default of 2 MB a request let many connections hold
/// megabytes each.
pub(crate) const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The extractor of a [`Posted`] form: a form over [`FORM_BODY_LIMIT`] or one that does not
/// parse is refused with a Chinese page (axum's own rejection is an English line).
#[derive(Debug)]
pub(crate) struct PostedForm<T>(pub(crate) Posted<T>);

impl<S, T> axum::extract::FromRequest<S> for PostedForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = OfficeError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, OfficeError> {
        match Form::<Posted<T>>::from_request(req, state).await {
            Ok(Form(posted)) => Ok(PostedForm(posted)),
            Err(r) if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(OfficeError::TooLarge)
            }
            Err(_) => Err(OfficeError::BadInput(
                "表单读不出来，没有做任何改动；请刷新页面后重新填写".into(),
            )),
        }
    }
}

impl Office {
    /// Runs one posted form, the same way for every form: the session's member is found (or
    /// the browser is sent to log in), the CSRF token is checked, then the member's right to
    /// post it (`who`), all before `act` runs with the archive, the hub, the member and the
    /// form's fields. Nothing is written until `act` writes; `act` refuses bad input before it
    /// does.
    pub(crate) async fn post_form<T, R>(
        &self,
        ctx: Ctx,
        who: Who,
        form: Posted<T>,
        act: impl FnOnce(&mut Archive, &dyn Hub, &auth::Viewer, T) -> Result<R, OfficeError>
        + Send
        + 'static,
    ) -> Result<R, OfficeError>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        self.with_archive(move |a, hub| {
            let v = auth::viewer(a, &ctx)?;
            v.check_csrf(&form.csrf)?;
            if who == Who::Admin {
                v.require_admin_to("做这项修改")?;
            }
            act(a, hub, &v, form.fields)
        })
        .await
    }
}

/// The route for a form that needs nothing from the request but the form: `POST` runs `act`
/// through [`Office::post_form`], so an action is written as a plain function of the archive,
/// the hub, the member and the form's fields.
fn action<T, A>(who: Who, act: A) -> axum::routing::MethodRouter<Office>
where
    T: serde::de::DeserializeOwned + Send + 'static,
    A: Fn(&mut Archive, &dyn Hub, &auth::Viewer, T) -> Result<Response, OfficeError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    post(
        move |State(office): State<Office>, ctx: Ctx, PostedForm(form): PostedForm<T>| {
            let act = act.clone();
            async move { office.post_form(ctx, who, form, act).await }
        },
    )
}

/// Marks a request that came over the hub's own TLS (a request extension the server that
/// terminates TLS adds to each request): the console's cookies are then `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedOverTls;

/// What every handler needs from the request: its cookies, where it came from, whether it
/// came over TLS (the hub's own, [`ServedOverTls`], or a proxy's in front, which says so with
/// `X-Forwarded-Proto: https`).
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub headers: HeaderMap,
    pub source: IpAddr,
    pub tls: bool,
}

/// The prefix of the console's cookie names over TLS. A browser takes a `__Host-` cookie only
/// from a secure origin, for the whole host (`Path=/`, no `Domain`): someone on the school's
/// network answering a plain HTTP request to the hub's address cannot plant one (a session of
/// his own, whose work would then be the victim's; a login cookie beating the CSRF check).
pub(crate) const HOST_PREFIX: &str = "__Host-";

/// The most cookies of one kind ([`Ctx::cookies_named_like`]) a request is read with.
pub(crate) const MAX_COOKIES_NAMED_LIKE: usize = 16;

impl Ctx {
    /// The cookies the request carries, by the console's names: over TLS only those with the
    /// [`HOST_PREFIX`], which is taken off.
    fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        let tls = self.tls;
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter_map(move |(k, v)| {
                if tls {
                    k.strip_prefix(HOST_PREFIX).map(|k| (k, v))
                } else {
                    Some((k, v))
                }
            })
    }

    /// The cookies whose name starts with `prefix` and whose value is a token as the console
    /// makes them (64 hex digits), as (name, value): the first [`MAX_COOKIES_NAMED_LIKE`]
    /// (each is hashed and looked up; a request may carry thousands).
    pub fn cookies_named_like(&self, prefix: &str) -> Vec<(String, String)> {
        self.cookies()
            .filter(|(k, v)| {
                k.starts_with(prefix) && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .take(MAX_COOKIES_NAMED_LIKE)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The value of the cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Ctx, Self::Rejection> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let tls = over_tls(&parts.extensions, &parts.uri, &parts.headers);
        Ok(Ctx {
            headers: parts.headers.clone(),
            source,
            tls,
        })
    }
}

/// What a response served over TLS tells the browser in `Strict-Transport-Security`: reach
/// this host over HTTPS only, so that a later `http://` address typed in the office is not a
/// plain request a machine on the LAN could answer with a login form of its own. For one day,
/// renewed at every visit: a browser that remembers it refuses, with no way past, a
/// certificate it does not trust, and a county certificate left to expire must not shut the
/// office out of its console for months. Not `includeSubDomains`: a county's name may have
/// other hosts. A browser ignores it where it had to accept a certificate it does not trust
/// (the console's own, self-signed) and for an IP address.
pub const HSTS: &str = "max-age=86400";

/// Every response of the console, pages, workbooks, redirects and errors alike, tells the
/// browser to take its declared type and not guess one (a workbook or a name shown back must
/// never be run as a page), and, over TLS, to come back over TLS only ([`HSTS`]).
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tls = over_tls(request.extensions(), request.uri(), request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// Whether a request came over TLS: the hub's own ([`ServedOverTls`]), or a proxy's in front,
/// which says so with `X-Forwarded-Proto: https`.
fn over_tls(
    extensions: &axum::http::Extensions,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> bool {
    extensions.get::<ServedOverTls>().is_some()
        || uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

const STYLE: &str = include_str!("../assets/style.css");

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
}

/// Today by the hub's clock, in its time zone.
pub(crate) fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use shouwang_core::archive::SchoolSetup;

    use super::*;

    /// A new school's hub archive at `path`, 张长友 (领导组) its administrator: the console's
    /// unit tests' school.
    pub(crate) fn hub_archive(path: &std::path::Path) -> Archive {
        Archive::create_school(path, &SchoolSetup::sample("学校服务器")).unwrap()
    }

    /// A request carrying thousands of browser cookies is read with 16 of them: each is
    /// hashed and looked up under a lock.
    #[test]
    fn a_request_is_read_with_at_most_sixteen_cookies_of_a_kind() {
        let mut headers = HeaderMap::new();
        let jar: Vec<String> = (0..40)
            .map(|i| format!("sw_browser_{i}={}", "ab".repeat(32)))
            .collect();
        headers.insert(header::COOKIE, jar.join("; ").parse().unwrap());
        let ctx = Ctx {
            headers,
            source: IpAddr::from([127, 0, 0, 1]),
            tls: false,
        };
        let read = ctx.cookies_named_like("sw_browser_");
        assert_eq!(read.len(), MAX_COOKIES_NAMED_LIKE);
        assert_eq!(read[0].0, "sw_browser_0");
    }

    pub(crate) struct TestHub(pub PathBuf);

    impl Hub for TestHub {
        fn open_archive(&self) -> Result<Archive, Error> {
            Archive::open(&self.0)
        }
        fn invite(&self, _: &str, _: Option<Role>, _: u32) -> Result<Ticket, Error> {
            Err(Error::NotPermitted("测试中不发邀请".into()))
        }
    }

    /// The console's real router, served over HTTP on a loopback port by a runtime of its own,
    /// over the plain hub archive at a path: what the unit tests that need a whole request
    /// drive, one request per connection.
    pub(crate) struct Console {
        pub port: u16,
        _runtime: tokio::runtime::Runtime,
    }

    /// A response: the status, the `Set-Cookie` values and the body.
    #[derive(Debug)]
    pub(crate) struct Reply {
        pub status: u16,
        pub cookies: Vec<String>,
        pub body: String,
    }

    impl Console {
        pub fn start(path: &std::path::Path) -> Console {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let port = listener.local_addr().unwrap().port();
            let app = Office::new(TestHub(path.to_owned())).router();
            runtime.spawn(async move {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app).await.unwrap();
            });
            Console {
                port,
                _runtime: runtime,
            }
        }

        /// Sends one request with `cookie` (`name=value; …`, or empty) and a form `body`
        /// (`POST`) and reads the response to its end.
        pub fn request(&self, method: &str, path: &str, cookie: &str, body: &str) -> Reply {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
            let cookie = if cookie.is_empty() {
                String::new()
            } else {
                format!("Cookie: {cookie}\r\n")
            };
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(request.as_bytes()).unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            let raw = String::from_utf8_lossy(&raw).to_string();
            let (head, body) = raw.split_once("\r\n\r\n").unwrap();
            let status = head[9..12].parse().unwrap();
            let cookies = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, v)| v.trim().to_owned())
                .collect();
            Reply {
                status,
                cookies,
                body: body.to_owned(),
            }
        }

        /// Opens the login page and posts its form with `name` and `password`.
        pub fn login(&self, name: &str, password: &str) -> Reply {
            let page = self.request("GET", "/login", "", "");
            let cookie = page
                .cookies
                .iter()
                .find_map(|c| c.strip_prefix("sw_login="))
                .and_then(|c| c.split(';').next())
                .unwrap()
                .to_owned();
            let encode = |s: &str| -> String {
                s.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect()
            };
            let body = format!(
                "name={}&password={}&csrf={cookie}",
                encode(name),
                encode(password)
            );
            self.request("POST", "/login", &format!("sw_login={cookie}"), &body)
        }
    }

    /// Console requests wait for the archive as tasks, not on the blocking pool the hub's sync
    /// conversations share. Sixty-four requests, each holding the archive for 20 ms (a login's
    /// argon2 check), on a runtime with four blocking threads: a conversation's callback
    /// queued after them runs while most of them still wait. (Before, the 64 requests took
    /// every blocking thread waiting for the archive, and the callback ran after nearly all.)
    #[test]
    fn console_requests_queue_without_taking_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        hub_archive(&path);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let office = Office::new(TestHub(path));
            let done = Arc::new(AtomicUsize::new(0));
            let requests: Vec<_> = (0..64)
                .map(|_| {
                    let (office, done) = (office.clone(), done.clone());
                    tokio::spawn(async move {
                        office
                            .with_archive(|_, _| {
                                std::thread::sleep(Duration::from_millis(20));
                                Ok(())
                            })
                            .await
                            .unwrap();
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            // Let every request reach its wait.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let counted = done.clone();
            let seen = tokio::task::spawn_blocking(move || counted.load(Ordering::SeqCst))
                .await
                .unwrap();
            for r in requests {
                r.await.unwrap();
            }
            assert!(
                seen < 32,
                "the callback ran only after {seen} of 64 console requests"
            );
        });
    }
}
