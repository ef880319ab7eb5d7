//! The office console over TLS on the real `shouwang-relay serve`: what a school gets when it
//! opens the console to its network (`server::tls`). Everything on 127.0.0.1, with `[http] tls
//! = true` standing in for a LAN address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use shouwang_relay::server::tls::{CERT_FILE_NAME, fingerprint};
use shouwang_tests::fixtures::small_hub;
use shouwang_tests::http::{Client, trusting};
use shouwang_tests::hub_process::{HubPorts, HubProcess, tail};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");
const PASSWORD: &str = "郭庄小学2026办公室";

/// The `n`-th fingerprint `serve` printed for the administrator (one per start), from its log.
fn printed_fingerprint(log: &std::path::Path, port: u16, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("办公室网页：https://127.0.0.1:{port}/")))
            .collect();
        if let Some(line) = lines.get(n) {
            assert!(line.contains("核对证书指纹"), "{line}");
            return line
                .split("SHA-256 ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "{}", tail(log));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A school opens its console to the network: it is served over TLS with a certificate of its
/// own, whose fingerprint `serve` prints for the administrator to compare and which stays the
/// same across restarts (its key sealed with the data key); the session cookie is `Secure` and
/// pages ask for HTTPS from then on; plain HTTP gets no page; a stranger holding all its
/// address's connections silent holds up no one; and a client that trusts another
/// certificate does not get through.
#[test]
fn the_console_on_the_school_network_is_served_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "");
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&ports.config)
        .unwrap();
    writeln!(config, "tls = true").unwrap();
    drop(config);
    let (ok, said) = ports.office_password(BIN.as_ref(), "张长友", PASSWORD);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("https://127.0.0.1:{}/", ports.http)),
        "{said}"
    );

    let log = dir.path().join("hub.log");
    let hub = HubProcess::start(BIN.as_ref(), &ports, &log);
    let printed = printed_fingerprint(&log, ports.http, 0);
    let pem = std::fs::read(data.root().join(CERT_FILE_NAME)).unwrap();
    // The certificate's key is not in the data directory in clear: sealed with the data key.
    for entry in std::fs::read_dir(data.root()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(11).any(|w| w == b"PRIVATE KEY"),
                "{} holds a private key in clear",
                path.display()
            );
        }
    }
    let der = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
        .next()
        .map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c.unwrap())
        .unwrap();
    assert_eq!(
        printed,
        fingerprint(&der),
        "the certificate served is the one printed"
    );

    // Someone on the LAN opens as many connections as one address may hold and sends
    // nothing on any: the handshakes they would start do not keep the office's browser out.
    let console = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, ports.http));
    let stranger = std::net::Ipv4Addr::new(127, 0, 0, 9);
    let _idle: Vec<_> = (0..shouwang_relay::server::CONSOLE_PER_ADDRESS)
        .map(|_| shouwang_tests::http::connect_from(stranger, console))
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    let mut web = Client::over_tls(ports.http, trusting(&pem));
    let r = web.login("张长友", PASSWORD);
    assert_eq!(r.status, 303, "{}", r.text());
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| !c.contains("Max-Age=0"))
        .expect("a session cookie")
        .to_owned();
    assert!(
        session.starts_with("__Host-")
            && session.contains("; Secure")
            && session.contains("HttpOnly"),
        "{session}"
    );
    let page = web.get("/");
    // The browser is told to come back over HTTPS only (a school that later types http://
    // is not sent its password in the clear); a browser that had to accept a certificate it
    // does not trust ignores this, as it should.
    assert_eq!(
        page.header("strict-transport-security"),
        Some(shouwang_office::HSTS),
        "{:?}",
        page.headers
    );
    let page = page.text();
    assert!(page.contains("概览") && page.contains("张长友"), "{page}");
    let health = web.get("/health");
    assert_eq!(health.status, 200);

    // Plain HTTP on the same port: no page, no password form.
    let mut plain = TcpStream::connect(("127.0.0.1", ports.http)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        !raw.contains("HTTP/1.1 200") && !raw.contains("password"),
        "{raw}"
    );

    // A client trusting some other certificate (a machine pretending to be the server, seen
    // from the other side) does not complete the handshake.
    let other = rcgen_like_other_certificate(dir.path());
    let stranger = Client::over_tls(ports.http, trusting(&other));
    assert!(
        stranger
            .exchange(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .is_err()
    );

    // A restart serves the same certificate.
    let hub = hub.restart();
    assert_eq!(printed_fingerprint(&log, ports.http, 1), printed);
    let mut web = Client::over_tls(ports.http, trusting(&pem));
    assert_eq!(web.login("张长友", PASSWORD).status, 303);
    drop(hub);
}

/// Another certificate, made by another data directory's console.
fn rcgen_like_other_certificate(dir: &std::path::Path) -> Vec<u8> {
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    shouwang_relay::server::tls::ConsoleCert::load(
        None,
        &other,
        &[],
        &shouwang_relay::server::DataKey::from_bytes([3; 32]),
    )
    .unwrap();
    std::fs::read(other.join(CERT_FILE_NAME)).unwrap()
}
