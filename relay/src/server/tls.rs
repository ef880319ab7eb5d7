//! The office console's TLS, when it listens on the school network.
//!
//! 1. **When.** [`HttpTls::Auto`] (the default) serves TLS as soon as the console listens on
//!    an address other than loopback: passwords, session cookies and children's files then
//!    cross the school LAN. On 127.0.0.1 (a browser on the server itself) it stays plain HTTP.
//!    `[http] tls = true` always serves TLS; `tls = false` never (a reverse proxy in front
//!    terminates TLS and says so with `X-Forwarded-Proto: https`).
//! 2. **Which certificate.** The one the configuration names (`[http] cert` and `key`, PEM
//!    files, e.g. one the county issues), else the console's own: a self-signed certificate
//!    made with rcgen on first start, for the names and addresses the configuration gives the
//!    hub, kept in the data directory as [`CERT_FILE_NAME`] (the certificate) and
//!    [`KEY_FILE_NAME`] (its private key, sealed with the hub's data key like `school.key`;
//!    both mode 0600) and reused afterwards, so its fingerprint stays what the administrator
//!    checked. Someone who copied the data directory cannot pose as the console on the
//!    school's network. A certificate file an older release wrote with its key in clear is
//!    split at the next start (the key sealed first, then the certificate rewritten alone),
//!    keeping the fingerprint. A school PC
//!    on a LAN without internet cannot get a certificate a browser trusts: the browser warns on
//!    the first visit, and `serve` and `office-password` print the certificate's SHA-256
//!    fingerprint ([`ConsoleCert::fingerprint`]) to compare before accepting it.
//! 3. **Handshakes.** Each runs in its own task, so a client that connects and sends nothing
//!    holds up no one: at most [`HANDSHAKES_PER_ADDRESS`] at once from one address and
//!    [`MAX_HANDSHAKES`] in all (more connections are closed at once), each within
//!    [`HANDSHAKE_TIMEOUT`]. Finished connections reach axum through
//!    [`TlsListener`]. The tasks belong to the listener and stop with it.
//! 4. **What the console learns.** Requests that came over this TLS carry [`ServedOverTls`]
//!    (`shouwang_office::ServedOverTls`), so its cookies are `Secure`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use shouwang_office::ServedOverTls;

use super::connections::{Connections, Guarded};
use super::secrets::DataKey;
use super::{OwnedTask, ServerError};

/// The console's own certificate, in the data directory.
pub const CERT_FILE_NAME: &str = "console-tls.pem";

/// The console's own private key, sealed with the data key, in the data directory.
pub const KEY_FILE_NAME: &str = "console-tls.key";

/// The first line of [`KEY_FILE_NAME`] (bound into its seal).
const KEY_HEADER: &str = "shouwang console tls key v1";

/// TLS handshakes in progress at once, every address together; connections beyond are
/// closed at once.
pub const MAX_HANDSHAKES: usize = 256;

/// TLS handshakes in progress at once from one source address (a browser opens about six to a
/// host): one address holding its every connection silent cannot take all the handshakes.
pub const HANDSHAKES_PER_ADDRESS: usize = 8;

/// A handshake not finished within this is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the console serves TLS (`[http] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpTls {
    /// TLS when it listens on anything but loopback, or when a certificate is configured.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never: plain HTTP (a proxy in front terminates TLS).
    Off,
}

impl HttpTls {
    /// Whether TLS is on for a console listening on `bind`, `configured` saying whether a
    /// certificate is named in the configuration.
    pub fn on_for(self, bind: SocketAddr, configured: bool) -> bool {
        match self {
            HttpTls::On => true,
            HttpTls::Off => false,
            HttpTls::Auto => configured || !bind.ip().is_loopback(),
        }
    }
}

/// A certificate chain and key named in the configuration (`[http] cert`, `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate the console serves, ready for handshakes.
#[derive(Clone)]
pub struct ConsoleCert {
    config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the (first) certificate, as browsers show it: `AB:CD:…`.
    pub fingerprint: String,
    /// Where it came from: the configured file, or the console's own in the data directory.
    pub file: PathBuf,
    /// Whether it is the console's own self-signed certificate (browsers warn about it).
    pub own: bool,
}

impl std::fmt::Debug for ConsoleCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleCert")
            .field("fingerprint", &self.fingerprint)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a DER certificate, as browsers show it (`AB:CD:…`).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl ConsoleCert {
    /// The configured certificate, or the console's own in `data_dir` (made now, for `names`,
    /// if there is none yet), its key sealed with `data_key`.
    pub fn load(
        configured: Option<&CertFiles>,
        data_dir: &Path,
        names: &[String],
        data_key: &DataKey,
    ) -> Result<ConsoleCert, ServerError> {
        let (certs, key, file) = match configured {
            Some(files) => {
                let certs = read_pem(&files.cert, "证书")?;
                let key = read_pem(&files.key, "私钥")?;
                (certs, key, files.cert.clone())
            }
            None => {
                let (certs, key) = own(data_dir, names, data_key)?;
                (certs, key, data_dir.join(CERT_FILE_NAME))
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&certs)
            .collect::<Result<_, _>>()
            .map_err(|e| unreadable(&file, "证书", &e))?;
        let Some(first) = chain.first() else {
            return Err(ServerError::Config(format!(
                "办公室网页的证书文件 {} 里没有证书",
                file.display()
            )));
        };
        let fingerprint = fingerprint(first);
        let own_key = data_dir.join(KEY_FILE_NAME);
        let key_file = configured.map_or(own_key.as_path(), |f| f.key.as_path());
        let key =
            PrivateKeyDer::from_pem_slice(&key).map_err(|e| unreadable(key_file, "私钥", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| {
                tracing::debug!("console TLS: {e}");
                ServerError::Config(format!(
                    "办公室网页的证书和私钥不匹配或不能使用（{}）",
                    key_file.display()
                ))
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ConsoleCert {
            config: Arc::new(config),
            fingerprint,
            file,
            own: configured.is_none(),
        })
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|e| {
        ServerError::Config(format!(
            "读不到办公室网页的{what}文件 {}：{}",
            path.display(),
            shouwang_core::error::io_text(&e)
        ))
    })
}

fn unreadable(path: &Path, what: &str, e: &dyn std::fmt::Display) -> ServerError {
    tracing::debug!("console TLS {}: {e}", path.display());
    ServerError::Config(format!(
        "办公室网页的{what}文件 {} 不是可用的 PEM 格式",
        path.display()
    ))
}

/// The console's own certificate and its key (PEM), made now if there is none, and split
/// from a file an older release wrote with the key in clear.
fn own(
    data_dir: &Path,
    names: &[String],
    data_key: &DataKey,
) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let cert_file = data_dir.join(CERT_FILE_NAME);
    let key_file = data_dir.join(KEY_FILE_NAME);
    if !cert_file.exists() || (!key_file.exists() && !holds_a_key(&read_pem(&cert_file, "证书")?))
    {
        // None yet (or its key lost: a certificate cannot be served without it).
        return create_own(data_dir, names, data_key);
    }
    let pem = read_pem(&cert_file, "证书")?;
    if holds_a_key(&pem) {
        // An older release's file: the key sealed first, then the old file overwritten with
        // zeros and removed, then the certificate alone put in its place. A crash before the
        // wipe leaves both files, and this runs again; after it, no certificate, and a new
        // one is made (the browser then asks once more).
        let (certs, key) = split_pem(&pem)?;
        write_private(&key_file, data_key.seal_bytes(KEY_HEADER, &key)?.as_bytes())
            .map_err(|e| unwritable(&key_file, &e))?;
        let tmp = cert_file.with_extension("split");
        write_private(&tmp, &certs).map_err(|e| unwritable(&tmp, &e))?;
        crate::keyfile::wipe_file(&cert_file).map_err(|e| {
            ServerError::Config(format!(
                "无法清除旧的办公室网页证书文件 {}：{e}",
                cert_file.display()
            ))
        })?;
        std::fs::rename(&tmp, &cert_file).map_err(|e| unwritable(&cert_file, &e))?;
        tracing::info!("the console's TLS key is now sealed with the data key");
        return Ok((certs, key));
    }
    let sealed = std::fs::read_to_string(&key_file).map_err(|e| {
        ServerError::Config(format!(
            "读不到办公室网页的私钥文件 {}：{}",
            key_file.display(),
            shouwang_core::error::io_text(&e)
        ))
    })?;
    match data_key.open_bytes(KEY_HEADER, &sealed) {
        Some(Some(key)) => Ok((pem, key)),
        _ => Err(ServerError::Config(format!(
            "办公室网页的私钥文件 {} 打不开（数据密钥不对，或文件已损坏）；删除它和 {} 后重启，会生成新的证书",
            key_file.display(),
            cert_file.display()
        ))),
    }
}

/// Whether a PEM file holds a private key.
fn holds_a_key(pem: &[u8]) -> bool {
    pem.windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----")
}

/// A PEM file's certificates and its private key, each as PEM.
fn split_pem(pem: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let text = String::from_utf8_lossy(pem);
    let Some(start) = text
        .find("-----BEGIN PRIVATE KEY-----")
        .or_else(|| text.find("-----BEGIN EC PRIVATE KEY-----"))
    else {
        return Err(ServerError::Config(
            "办公室网页的证书文件里的私钥不是可用的 PEM 格式".into(),
        ));
    };
    let end_marker = if text[start..].starts_with("-----BEGIN EC") {
        "-----END EC PRIVATE KEY-----"
    } else {
        "-----END PRIVATE KEY-----"
    };
    let Some(end) = text[start..]
        .find(end_marker)
        .map(|e| start + e + end_marker.len())
    else {
        return Err(ServerError::Config(
            "办公室网页的证书文件里的私钥不完整".into(),
        ));
    };
    let key = format!("{}\n", &text[start..end]);
    let certs = format!("{}{}", &text[..start], text[end..].trim_start());
    Ok((certs.into_bytes(), key.into_bytes()))
}

/// Makes the console's own self-signed certificate for `names` (DNS names or IP addresses;
/// `localhost` and 127.0.0.1 always): the certificate into [`CERT_FILE_NAME`] first, then its
/// key sealed with `data_key` into [`KEY_FILE_NAME`], each readable by the server's user only
/// and written in one rename. A crash between leaves a certificate without its key, which is
/// made anew at the next start (the other order could leave a new key beside an older
/// certificate, and a console that cannot start).
fn create_own(
    data_dir: &Path,
    names: &[String],
    data_key: &DataKey,
) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for n in names {
        if !n.is_empty() && !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    let made = rcgen::generate_simple_self_signed(sans).map_err(|e| {
        tracing::debug!("console TLS: {e}");
        ServerError::Config("无法生成办公室网页的证书".into())
    })?;
    let cert = made.cert.pem().into_bytes();
    let key = made.signing_key.serialize_pem().into_bytes();
    let key_file = data_dir.join(KEY_FILE_NAME);
    let cert_file = data_dir.join(CERT_FILE_NAME);
    write_private(&cert_file, &cert).map_err(|e| unwritable(&cert_file, &e))?;
    write_private(&key_file, data_key.seal_bytes(KEY_HEADER, &key)?.as_bytes())
        .map_err(|e| unwritable(&key_file, &e))?;
    Ok((cert, key))
}

/// Writes `bytes` to `file` (mode 0600) through a temporary file renamed into place.
fn write_private(file: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = file.with_extension("new");
    let written = (|| -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn unwritable(file: &Path, e: &io::Error) -> ServerError {
    ServerError::Config(format!(
        "无法写入办公室网页的证书 {}：{}",
        file.display(),
        shouwang_core::error::io_text(e)
    ))
}

/// Accepts TCP connections, runs their TLS handshakes in tasks of its own, and hands the
/// finished ones to axum. Dropping it stops accepting and every handshake in progress.
/// Each connection takes its place in `connections` (`super::connections`) before its
/// handshake.
#[derive(Debug)]
pub(crate) struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<Guarded<TcpStream>>, SocketAddr)>,
    _accepting: OwnedTask,
}

impl TlsListener {
    pub fn new(
        tcp: TcpListener,
        cert: &ConsoleCert,
        connections: Connections,
    ) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(cert.config.clone());
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = OwnedTask::spawn(async move {
            // Counted per address as the connections are; a place is held for the handshake.
            let slots = Connections::new(HANDSHAKES_PER_ADDRESS, MAX_HANDSHAKES, HANDSHAKE_TIMEOUT);
            let mut handshakes = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = tcp.accept() => {
                        let (stream, peer) = match accepted {
                            Ok(a) => a,
                            Err(e) => {
                                // Out of file descriptors and the like: wait, then go on.
                                tracing::warn!("console: accept failed: {e}");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        };
                        let Some(stream) = connections.guard(stream, peer.ip()) else {
                            tracing::debug!(%peer, "console: no place for another connection");
                            continue; // the stream is dropped: closed
                        };
                        let Some(slot) = slots.admit(peer.ip()) else {
                            tracing::debug!(%peer, "console: too many TLS handshakes at once");
                            continue;
                        };
                        let (acceptor, tx) = (acceptor.clone(), tx.clone());
                        handshakes.spawn(async move {
                            let _slot = slot;
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => {
                                    let _ = tx.send((tls, peer)).await;
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, "console: TLS handshake failed: {e}"),
                                Err(_) => tracing::debug!(%peer, "console: TLS handshake timed out"),
                            }
                        });
                    }
                    Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
                }
            }
        });
        Ok(TlsListener {
            addr,
            ready,
            _accepting: accepting,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<Guarded<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task is gone (only when the listener is dropped): nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn data_key() -> DataKey {
        DataKey::from_bytes([7; 32])
    }

    /// Every file of the data directory, read whole.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect()
    }

    #[test]
    fn the_console_s_key_is_sealed_and_an_older_file_is_split_keeping_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let made = ConsoleCert::load(None, dir.path(), &[], &data_key()).unwrap();
        for (path, bytes) in files(dir.path()) {
            assert!(
                !holds_a_key(&bytes),
                "{} holds a key in clear",
                path.display()
            );
        }
        assert!(dir.path().join(KEY_FILE_NAME).exists());
        // Another data key cannot open it: a Chinese sentence, nothing made anew.
        let e =
            ConsoleCert::load(None, dir.path(), &[], &DataKey::from_bytes([8; 32])).unwrap_err();
        assert!(e.to_string().contains("打不开"), "{e}");
        let again = ConsoleCert::load(None, dir.path(), &[], &data_key()).unwrap();
        assert_eq!(again.fingerprint, made.fingerprint);

        // An older release's file: certificate and key in clear, no sealed key beside it.
        let old = tempfile::tempdir().unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let pem = format!("{}{}", other.cert.pem(), other.signing_key.serialize_pem());
        std::fs::write(old.path().join(CERT_FILE_NAME), &pem).unwrap();
        let split = ConsoleCert::load(None, old.path(), &[], &data_key()).unwrap();
        assert_eq!(split.fingerprint, fingerprint(other.cert.der()));
        for (path, bytes) in files(old.path()) {
            assert!(
                !holds_a_key(&bytes),
                "{} holds a key in clear",
                path.display()
            );
        }
        let kept = ConsoleCert::load(None, old.path(), &[], &data_key()).unwrap();
        assert_eq!(
            kept.fingerprint, split.fingerprint,
            "the same certificate, served"
        );

        // A certificate whose key never got written (a crash while it was made): made anew.
        std::fs::remove_file(old.path().join(KEY_FILE_NAME)).unwrap();
        let anew = ConsoleCert::load(None, old.path(), &[], &data_key()).unwrap();
        assert_ne!(anew.fingerprint, split.fingerprint);
        assert!(old.path().join(KEY_FILE_NAME).exists());
    }

    #[test]
    fn auto_serves_tls_off_loopback_or_with_a_configured_certificate() {
        let lan: SocketAddr = "0.0.0.0:3342".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:3342".parse().unwrap();
        assert!(HttpTls::Auto.on_for(lan, false));
        assert!(!HttpTls::Auto.on_for(local, false));
        assert!(HttpTls::Auto.on_for(local, true));
        assert!(HttpTls::On.on_for(local, false));
        assert!(!HttpTls::Off.on_for(lan, true));
    }

    #[test]
    fn the_own_certificate_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["192.168.1.20".to_owned(), "xuexiao.example.cn".to_owned()];
        let first = ConsoleCert::load(None, dir.path(), &names, &data_key()).unwrap();
        let file = dir.path().join(CERT_FILE_NAME);
        #[cfg(unix)]
        for f in [&file, &dir.path().join(KEY_FILE_NAME)] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(f).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        let again = ConsoleCert::load(None, dir.path(), &[], &data_key()).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "made once, then kept");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let pem = std::fs::read(&file).unwrap();
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(fingerprint(&der), first.fingerprint);
    }

    #[test]
    fn a_missing_or_broken_configured_certificate_is_refused_in_chinese() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertFiles {
            cert: dir.path().join("county.pem"),
            key: dir.path().join("county.key"),
        };
        let e = ConsoleCert::load(Some(&files), dir.path(), &[], &data_key()).unwrap_err();
        assert!(e.to_string().contains("读不到办公室网页的证书文件"), "{e}");
        std::fs::write(&files.cert, "not a certificate").unwrap();
        std::fs::write(&files.key, "not a key").unwrap();
        let e = ConsoleCert::load(Some(&files), dir.path(), &[], &data_key()).unwrap_err();
        assert!(e.to_string().contains("没有证书"), "{e}");
        // A real certificate with somebody else's key.
        let own = ConsoleCert::load(None, dir.path(), &[], &data_key()).unwrap();
        std::fs::copy(&own.file, &files.cert).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        std::fs::write(&files.key, other.signing_key.serialize_pem()).unwrap();
        let e = ConsoleCert::load(Some(&files), dir.path(), &[], &data_key()).unwrap_err();
        assert!(e.to_string().contains("不匹配"), "{e}");
        let english = shouwang_core::error::untranslated(&e.to_string());
        assert!(english.is_empty(), "{e}: {english:?}");
        assert!(!dir.path().join("county.pem.new").exists());
    }
}
