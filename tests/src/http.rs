//! A minimal HTTP/1.1 client for the office console's tests and benchmark: one request per
//! connection (`Connection: close`), a cookie jar, form encoding, and reading a hidden form
//! field out of a page, over plain TCP or over TLS trusting one certificate. Only what the
//! console's server sends is understood (a body with a length, or chunked).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A minimal HTTP/1.1 client with a cookie jar (one request per connection).
#[derive(Debug, Clone)]
pub struct Client {
    pub port: u16,
    pub cookies: BTreeMap<String, String>,
    /// Over TLS, trusting only the certificate given to [`Client::over_tls`].
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A TLS client configuration that trusts the certificates of `pem` and nothing else.
pub fn trusting(pem: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `s` percent-encoded for a URL path segment or a form field.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the hidden field `name` in the first form that has it.
pub fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).expect(name) + needle.len();
    html[start..].split('"').next().unwrap().to_owned()
}

impl Client {
    /// A client of the server on 127.0.0.1:`port`, with no cookies.
    pub fn new(port: u16) -> Client {
        Client {
            port,
            cookies: BTreeMap::new(),
            tls: None,
        }
    }

    /// A client of the server on 127.0.0.1:`port` over TLS (server name `localhost`), trusting
    /// only `config`'s certificates ([`trusting`]).
    pub fn over_tls(port: u16, config: Arc<rustls::ClientConfig>) -> Client {
        Client {
            tls: Some(config),
            ..Client::new(port)
        }
    }

    /// Sends `request` on a new connection and reads until the server closes it. Over TLS a
    /// failed handshake is an `Err`.
    pub fn exchange(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut raw = Vec::new();
        match &self.tls {
            None => {
                s.write_all(request)?;
                s.read_to_end(&mut raw)?;
            }
            Some(config) => {
                let name = ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(std::io::Error::other)?;
                let mut tls = rustls::StreamOwned::new(conn, s);
                tls.write_all(request)?;
                tls.flush()?;
                match tls.read_to_end(&mut raw) {
                    Ok(_) => {}
                    // A server that closes without close_notify after the whole response.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(raw)
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &str,
    ) -> Response {
        let cookie = if self.cookies.is_empty() {
            String::new()
        } else {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("Cookie: {}\r\n", c.join("; "))
        };
        let body = body.unwrap_or("");
        let content = if method == "POST" {
            format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )
        } else {
            String::new()
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}{content}{extra}\r\n{body}"
        );
        let raw = self.exchange(request.as_bytes()).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        if headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        }) {
            body = dechunk(&body);
        }
        let r = Response {
            status,
            headers,
            body,
        };
        for c in r.set_cookies() {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        r
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None, "")
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.request("POST", path, Some(&form(fields)), "")
    }

    /// Opens the login page and logs in.
    pub fn login(&mut self, name: &str, password: &str) -> Response {
        let page = self.get("/login");
        assert_eq!(page.status, 200);
        let token = hidden(&page.text(), "csrf");
        self.post(
            "/login",
            &[("name", name), ("password", password), ("csrf", &token)],
        )
    }

    /// The CSRF token of the logged-in session (from any page's logout form).
    pub fn csrf(&mut self) -> String {
        hidden(&self.get("/").text(), "csrf")
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 2 + n + 2..];
    }
}

/// A plain TCP connection to `to` from the loopback address `from` (any 127.0.0.x: Linux
/// answers on all of them), as another computer on the school's LAN would connect.
pub fn connect_from(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from((from, 0)))?;
        socket.connect(to).await
    });
    let stream = stream.expect("connect").into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// Whether the server closes `stream` (an end of file or a reset) within `within`, rather than
/// keeping it open.
pub fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}
