//! Server settings: embedded defaults, an optional TOML file on top.
//!
//! ```toml
//! data_dir = "./shouwang-hub"
//!
//! [data_key]                      # the key that encrypts hub.db, school.key and hub.key;
//! file = "/etc/shouwang/hub-data.key"     # one of: a key file outside the data directory
//! # env = "SHOUWANG_HUB_KEY"              #   an environment variable (64 hex digits)
//! # credential = "hub.key"                #   a systemd credential ($CREDENTIALS_DIRECTORY)
//!
//! [relay]                         # the embedded iroh relay (plain HTTP)
//! enabled = true
//! bind = "0.0.0.0:3340"
//! url = "http://relay.example.org:3340"   # what devices use; default from `bind`
//!
//! [hub]
//! bind = ["0.0.0.0:3341", "[::]:3341"]    # UDP
//! public_addrs = ["203.0.113.5:3341"]     # put in invites; default: `bind` if specific
//! idle_timeout_secs = 60
//! certificate_days = 30                 # renewed on every sync once half has passed
//! daily_change_mib = 64                  # changes taken from one member a day
//! invite_days = 7                        # taken as 90 above (`membership::MAX_INVITE_DAYS`)
//! max_connections = 512                   # open at once, from everyone
//! max_connections_per_endpoint = 4        # open at once, from one device
//! max_stranger_connections = 16           # open at once, from unregistered devices (an
//!                                         # invite open; else they are refused at once)
//!
//! [http]                          # /health, /metrics and the office console
//! bind = "127.0.0.1:3342"
//! tls = "auto"                    # TLS unless on loopback (`super::tls`); or true, false
//! # cert = "/etc/shouwang/console.pem"    # a certificate chain (PEM) instead of the console's
//! # key = "/etc/shouwang/console.key"     #   own self-signed one, with its key
//! ```
//!
//! `url` and `public_addrs` are where phones reach the hub; `init-school` and
//! `shouwang-relay address` write them (`super::reach`), and `serve` and `invite` refuse
//! invites that would carry only loopback addresses from a server listening beyond loopback
//! ([`ServerConfig::check_reachable`]). The binary reads `--config`, else
//! `$SHOUWANG_RELAY_CONFIG`, else `~/.config/shouwang/relay.toml` if it exists
//! ([`default_config_file`]).
//!
//! Without `[data_key]`, `shouwang-relay` keeps the data key in `hub-data.key` beside the
//! configuration file, or, with no configuration file, in `$XDG_CONFIG_HOME/shouwang/`
//! (`~/.config/shouwang/`); `--key-file` overrides both. The library's default (tests) is the
//! file beside the data directory, `<data_dir>.key`. A key file inside the data directory is
//! refused.
//!
//! A build with the cargo feature `bench-plain-store` (benchmarks only, never deployed) also
//! takes `[bench] plain_store = true`: `hub.db` is plain SQLite (`super::data`, "Bench only").
//! Any other build refuses the section as an unknown key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ServerError;
use super::data::DataDir;
use super::secrets::{KEY_FILE_NAME, KeySource};
use super::tls::{CertFiles, HttpTls};
use crate::transport::{ConnectionLimits, MAX_FRAME, RelayUrl};

/// Default port of the embedded relay (TCP).
pub const RELAY_PORT: u16 = 3340;
/// Default port of the hub's endpoint (UDP).
pub const HUB_PORT: u16 = 3341;
/// Default port of `/health` and `/metrics` (TCP).
pub const HTTP_PORT: u16 = 3342;
/// Default data directory.
pub const DATA_DIR: &str = "./shouwang-hub";

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The hub's archive, keys and invites.
    pub data_dir: PathBuf,
    /// Where the embedded relay listens; `None` runs no relay.
    pub relay_bind: Option<SocketAddr>,
    /// The relay URL devices are given. Default: `http://` + the relay's address (loopback when
    /// it listens on every interface). With no embedded relay, an external relay.
    pub relay_url: Option<String>,
    /// UDP sockets of the hub's endpoint.
    pub hub_bind: Vec<SocketAddr>,
    /// Direct addresses put in invites. Default: the hub's specific bind addresses.
    pub hub_public_addrs: Vec<SocketAddr>,
    /// Where `/health`, `/metrics` and the office console listen; `None` serves none.
    pub http_bind: Option<SocketAddr>,
    /// Whether they are served over TLS ([`HttpTls::Auto`]: when not on loopback).
    pub http_tls: HttpTls,
    /// The certificate to serve them with; `None`: the console's own, made on first start.
    pub http_cert: Option<CertFiles>,
    /// Connections with no frame for this long are closed; also how long a device's
    /// connection is kept open, warm, for its next sync after one ends.
    pub idle_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// How long certificates are valid. The hub renews a device's certificate at a sync once
    /// less than half of this is left, so a phone that never comes back (lost, its owner gone)
    /// falls out of peer trust by itself within this many days.
    pub certificate_days: u32,
    /// How long invites are valid.
    pub invite_days: u32,
    /// Bytes of changes the hub takes from one member (not an administrator) a day; what is
    /// over waits for the next day.
    pub daily_change_bytes: u64,
    /// Where the data key comes from; `None`: the key file beside the data directory.
    pub data_key: Option<KeySource>,
    /// Connections open at once, in total and per remote endpoint; more are refused at once.
    pub limits: ConnectionLimits,
    /// How fast a device (not an administrator's) may send sync frames (`crate::pace`).
    pub pace: crate::pace::Pace,
    /// How long devices the school does not register keep their relay connection after the
    /// last invite closed (`hub_relay::GRACE`).
    pub relay_grace: Duration,
    /// `hub.db` is plain SQLite, for the storm bench only (`super::data`, "Bench only").
    #[cfg(feature = "bench-plain-store")]
    pub bench_plain_store: bool,
}

impl ServerConfig {
    /// The embedded defaults, with the data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            relay_bind: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, RELAY_PORT))),
            relay_url: None,
            hub_bind: vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, HUB_PORT)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, HUB_PORT)),
            ],
            hub_public_addrs: Vec::new(),
            http_bind: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, HTTP_PORT))),
            idle_timeout: Duration::from_secs(60),
            max_frame: MAX_FRAME,
            certificate_days: 30,
            daily_change_bytes: 64 * 1024 * 1024,
            invite_days: 7,
            http_tls: HttpTls::Auto,
            http_cert: None,
            data_key: None,
            limits: ConnectionLimits::default(),
            pace: crate::pace::Pace::default(),
            relay_grace: super::hub_relay::GRACE,
            #[cfg(feature = "bench-plain-store")]
            bench_plain_store: false,
        }
    }

    /// Where the data key comes from.
    pub fn key_source(&self) -> KeySource {
        self.data_key
            .clone()
            .unwrap_or_else(|| KeySource::beside(&self.data_dir))
    }

    /// The data directory, with its key source.
    pub fn data(&self) -> DataDir {
        let data = DataDir::with_key(&self.data_dir, self.key_source());
        #[cfg(feature = "bench-plain-store")]
        if self.bench_plain_store {
            return data.with_plain_store_for_bench();
        }
        data
    }

    /// Everything on 127.0.0.1 with ports chosen by the system (tests).
    pub fn loopback(data_dir: impl Into<PathBuf>) -> ServerConfig {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        ServerConfig {
            relay_bind: Some(any),
            hub_bind: vec![any],
            http_bind: Some(any),
            ..ServerConfig::new(data_dir)
        }
    }

    /// The defaults overlaid with a TOML file's settings.
    pub fn from_toml(text: &str) -> Result<ServerConfig, ServerError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| toml_error(text, e.span()))?;
        let mut c = ServerConfig::new(file.data_dir.unwrap_or_else(|| DATA_DIR.into()));
        if let Some(r) = file.relay {
            if r.enabled == Some(false) {
                c.relay_bind = None;
            } else if let Some(b) = r.bind {
                c.relay_bind = Some(b);
            }
            c.relay_url = r.url;
        }
        if let Some(h) = file.hub {
            if let Some(b) = h.bind {
                c.hub_bind = b;
            }
            c.hub_public_addrs = h.public_addrs.unwrap_or_default();
            if let Some(s) = h.idle_timeout_secs {
                c.idle_timeout = Duration::from_secs(s.max(1));
            }
            if let Some(d) = h.certificate_days {
                c.certificate_days = d;
            }
            if let Some(d) = h.invite_days {
                c.invite_days = d;
            }
            if let Some(m) = h.daily_change_mib {
                c.daily_change_bytes = m.saturating_mul(1024 * 1024);
            }
            if let Some(n) = h.max_connections {
                c.limits.total = n;
            }
            if let Some(n) = h.max_connections_per_endpoint {
                c.limits.per_endpoint = n;
            }
            if let Some(n) = h.max_stranger_connections {
                c.limits.strangers = n;
            }
        }
        if let Some(k) = file.data_key {
            c.data_key = Some(match (k.file, k.env, k.credential) {
                (Some(f), None, None) => KeySource::File(f),
                (None, Some(v), None) => KeySource::Env(v),
                (None, None, Some(n)) => KeySource::Credential(n),
                _ => {
                    return Err(ServerError::Config(
                        "[data_key] 里 file、env、credential 必须只写一项".into(),
                    ));
                }
            });
        }
        #[cfg(feature = "bench-plain-store")]
        if let Some(b) = file.bench {
            c.bench_plain_store = b.plain_store.unwrap_or(false);
        }
        if let Some(h) = file.http {
            c.http_bind = if h.enabled == Some(false) {
                None
            } else {
                h.bind.or(c.http_bind)
            };
            c.http_tls = match h.tls {
                None => HttpTls::Auto,
                Some(TlsSetting::Switch(true)) => HttpTls::On,
                Some(TlsSetting::Switch(false)) => HttpTls::Off,
                Some(TlsSetting::Word(w)) if w == "auto" => HttpTls::Auto,
                Some(TlsSetting::Word(w)) => {
                    return Err(ServerError::Config(format!(
                        "[http] tls 只能是 \"auto\"、true 或 false，不能是“{w}”"
                    )));
                }
            };
            c.http_cert = match (h.cert, h.key) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some(CertFiles { cert, key }),
                _ => {
                    return Err(ServerError::Config(
                        "[http] 的 cert 和 key 要一起写：证书和它的私钥".into(),
                    ));
                }
            };
            if c.http_tls == HttpTls::Off && c.http_cert.is_some() {
                return Err(ServerError::Config(
                    "[http] 写了证书却又写了 tls = false：要用证书请删掉 tls = false".into(),
                ));
            }
        }
        c.check()?;
        Ok(c)
    }

    /// Refuses settings that cannot work.
    pub fn check(&self) -> Result<(), ServerError> {
        if self.hub_bind.is_empty() && self.relay_url().is_none() {
            return Err(ServerError::Config(
                "服务器既没有绑定地址也没有中继，设备无法连接".into(),
            ));
        }
        if let Some(u) = &self.relay_url {
            parse_relay_url(u)?;
        }
        if self.certificate_days == 0 || self.invite_days == 0 {
            return Err(ServerError::Config("有效天数必须大于 0".into()));
        }
        if self.limits.total == 0 || self.limits.per_endpoint == 0 || self.limits.strangers == 0 {
            return Err(ServerError::Config("连接数上限必须大于 0".into()));
        }
        self.key_source()
            .check_outside(&self.data_dir)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        Ok(())
    }

    /// Refuses settings whose invites would carry only loopback addresses (or none) while the
    /// server listens beyond loopback: phones could never reach it (the relay URL defaults to
    /// 127.0.0.1 when the relay listens on every interface). A server bound to loopback only
    /// (`init-school --local-only`, the tests) is local on purpose and passes.
    pub fn check_reachable(&self) -> Result<(), ServerError> {
        let beyond = self.relay_bind.is_some_and(|b| !b.ip().is_loopback())
            || self.hub_bind.iter().any(|b| !b.ip().is_loopback());
        if !beyond {
            return Ok(());
        }
        let url = self.relay_url();
        let by_relay = url.as_deref().is_some_and(|u| !url_is_local(u));
        let direct = self
            .public_addrs()
            .iter()
            .any(|a| !a.ip().is_loopback() && !a.ip().is_unspecified());
        if by_relay || direct {
            return Ok(());
        }
        let mut shown: Vec<String> = url.into_iter().collect();
        shown.extend(self.public_addrs().iter().map(|a| a.to_string()));
        if shown.is_empty() {
            shown.push("没有地址".into());
        }
        Err(ServerError::Refused(super::reach::unreachable_hint(
            &shown.join("、"),
        )))
    }

    /// The relay URL devices are given, from the settings alone (before anything runs).
    pub fn relay_url(&self) -> Option<String> {
        self.relay_url
            .clone()
            .or_else(|| self.relay_bind.map(|b| default_relay_url(b, b.port())))
    }

    /// Whether the console is served over TLS (`super::tls`, point 1).
    pub fn console_tls(&self) -> bool {
        self.http_bind
            .is_some_and(|b| self.http_tls.on_for(b, self.http_cert.is_some()))
    }

    /// The names and addresses the console's own certificate is made for: where the console
    /// listens if that is one address, and where phones are told to reach the hub.
    pub fn console_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(b) = self.http_bind.filter(|b| !b.ip().is_unspecified()) {
            names.push(b.ip().to_string());
        }
        names.extend(self.public_addrs().iter().map(|a| a.ip().to_string()));
        if let Some(url) = self.relay_url() {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let host = match rest.strip_prefix('[') {
                Some(v6) => v6.split(']').next(),
                None => rest.split(['/', ':']).next(),
            };
            names.extend(host.map(str::to_owned));
        }
        names.retain(|n| !n.is_empty() && n != "0.0.0.0" && n != "::");
        names.dedup();
        names
    }

    /// The direct addresses put in invites, from the settings alone.
    pub fn public_addrs(&self) -> Vec<SocketAddr> {
        if !self.hub_public_addrs.is_empty() {
            return self.hub_public_addrs.clone();
        }
        self.hub_bind
            .iter()
            .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
            .copied()
            .collect()
    }
}

/// Where `shouwang-relay` keeps the data key when the configuration names no `[data_key]`:
/// `hub-data.key` beside the configuration file, else in `$XDG_CONFIG_HOME/shouwang/` (or
/// `$HOME/.config/shouwang/`); `None` if there is no such directory.
pub fn default_key_file(config_file: Option<&Path>) -> Option<PathBuf> {
    if let Some(file) = config_file {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        return Some(dir.unwrap_or(Path::new(".")).join(KEY_FILE_NAME));
    }
    let env = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let config_home = env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config")))?;
    Some(config_home.join("shouwang").join(KEY_FILE_NAME))
}

/// The configuration file `shouwang-relay` reads when none is named (`--config`,
/// `$SHOUWANG_RELAY_CONFIG`) and `init-school` writes: `relay.toml` in
/// `$XDG_CONFIG_HOME/shouwang/` (or `$HOME/.config/shouwang/`), beside the default data key.
pub fn default_config_file() -> Option<PathBuf> {
    let key = default_key_file(None)?;
    Some(key.with_file_name(CONFIG_FILE_NAME))
}

/// The file name of the default configuration file.
pub const CONFIG_FILE_NAME: &str = "relay.toml";

/// Whether a relay URL names this machine (a loopback address, an unspecified one, or
/// `localhost`).
fn url_is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.is_empty(),
    }
}

/// `http://` + the address (loopback for an unspecified address) and `port`.
pub(crate) fn default_relay_url(bind: SocketAddr, port: u16) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, port))
}

pub(crate) fn parse_relay_url(url: &str) -> Result<RelayUrl, ServerError> {
    url.parse::<RelayUrl>()
        .map_err(|_| ServerError::Config(format!("中继地址无效：{url}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    data_key: Option<KeySection>,
    relay: Option<RelaySection>,
    hub: Option<HubSection>,
    http: Option<HttpSection>,
    #[cfg(feature = "bench-plain-store")]
    bench: Option<BenchSection>,
}

/// `[bench]`: settings for benchmarks only (feature `bench-plain-store`).
#[cfg(feature = "bench-plain-store")]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchSection {
    plain_store: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelaySection {
    enabled: Option<bool>,
    bind: Option<SocketAddr>,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSection {
    bind: Option<Vec<SocketAddr>>,
    public_addrs: Option<Vec<SocketAddr>>,
    idle_timeout_secs: Option<u64>,
    certificate_days: Option<u32>,
    invite_days: Option<u32>,
    daily_change_mib: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_endpoint: Option<usize>,
    max_stranger_connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySection {
    file: Option<PathBuf>,
    env: Option<String>,
    credential: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    enabled: Option<bool>,
    bind: Option<SocketAddr>,
    tls: Option<TlsSetting>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// `[http] tls`: `true`, `false` or `"auto"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TlsSetting {
    Switch(bool),
    Word(String),
}

/// A configuration file TOML cannot read, named by its line (the TOML library's own text is
/// English: it goes to `Debug` only through the span it gives).
pub(crate) fn toml_error(text: &str, span: Option<std::ops::Range<usize>>) -> ServerError {
    match span {
        Some(span) => {
            let line = text
                .get(..span.start.min(text.len()))
                .map_or(0, |t| t.matches('\n').count())
                + 1;
            ServerError::Config(format!(
                "配置文件第 {line} 行格式不对，或有不认识的设置，请对照说明修改"
            ))
        }
        None => ServerError::Config("配置文件格式不对，请对照说明修改".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_console_is_served_over_tls_once_it_leaves_loopback() {
        let c = ServerConfig::from_toml("").unwrap();
        assert!(!c.console_tls(), "127.0.0.1 by default: plain HTTP");
        let c = ServerConfig::from_toml(
            "[hub]\npublic_addrs = [\"192.168.1.20:3341\"]\n[relay]\nurl = \"http://xuexiao.example.cn:3340\"\n[http]\nbind = \"0.0.0.0:3342\"\n",
        )
        .unwrap();
        assert!(c.console_tls());
        assert_eq!(c.console_names(), ["192.168.1.20", "xuexiao.example.cn"]);
        let c = ServerConfig::from_toml("[http]\nbind = \"0.0.0.0:3342\"\ntls = false\n").unwrap();
        assert!(!c.console_tls(), "a proxy in front terminates TLS");
        let c = ServerConfig::from_toml(
            "[http]\ncert = \"/etc/shouwang/c.pem\"\nkey = \"/etc/shouwang/c.key\"\n",
        )
        .unwrap();
        assert!(
            c.console_tls(),
            "a configured certificate is used even on loopback"
        );
        for (toml, says) in [
            ("[http]\ntls = \"sometimes\"\n", "只能是"),
            ("[http]\ncert = \"/etc/shouwang/c.pem\"\n", "要一起写"),
            (
                "[http]\ntls = false\ncert = \"/a.pem\"\nkey = \"/a.key\"\n",
                "tls = false",
            ),
        ] {
            let e = ServerConfig::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains(says), "{toml}: {e}");
            let keys = ["tls", "cert", "key", "auto", "true", "false", "sometimes"];
            let english = shouwang_core::error::untranslated_except(&e, &keys);
            assert!(english.is_empty(), "{e}: {english:?}");
        }
    }

    #[test]
    fn an_empty_file_gives_the_embedded_defaults() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DATA_DIR));
        assert_eq!(c.relay_bind.unwrap().port(), RELAY_PORT);
        assert_eq!(c.relay_url().unwrap(), "http://127.0.0.1:3340/");
        assert!(c.public_addrs().is_empty());
        assert_eq!(c.http_bind.unwrap().port(), HTTP_PORT);
        assert_eq!(c.key_source(), KeySource::File("./shouwang-hub.key".into()));
        assert_eq!(c.limits, ConnectionLimits::default());
        assert_eq!(
            default_key_file(Some(Path::new("/etc/shouwang/relay.toml"))).unwrap(),
            PathBuf::from("/etc/shouwang/hub-data.key")
        );
    }

    /// The bench-only plain store cannot be asked for by a normal build's configuration.
    #[test]
    fn a_plain_store_is_only_for_a_bench_build() {
        let text = "[bench]\nplain_store = true\n";
        #[cfg(not(feature = "bench-plain-store"))]
        assert!(ServerConfig::from_toml(text).is_err());
        #[cfg(feature = "bench-plain-store")]
        assert!(
            ServerConfig::from_toml(text)
                .unwrap()
                .data()
                .is_plain_store()
        );
        assert!(!ServerConfig::from_toml("").unwrap().data().is_plain_store());
    }

    #[test]
    fn the_data_key_comes_from_one_source_outside_the_data_directory() {
        let c = ServerConfig::from_toml("[data_key]\nenv = \"SHOUWANG_HUB_KEY\"\n").unwrap();
        assert_eq!(c.key_source(), KeySource::Env("SHOUWANG_HUB_KEY".into()));
        let c = ServerConfig::from_toml("[data_key]\ncredential = \"hub.key\"\n").unwrap();
        assert_eq!(c.key_source(), KeySource::Credential("hub.key".into()));
        let two = "[data_key]\nenv = \"K\"\nfile = \"/k\"\n";
        assert!(ServerConfig::from_toml(two).is_err());
        let inside = "data_dir = \"/srv/hub\"\n[data_key]\nfile = \"/srv/hub/k.key\"\n";
        let e = ServerConfig::from_toml(inside).unwrap_err();
        assert!(e.to_string().contains("数据目录"), "{e}");
    }

    #[test]
    fn a_file_overrides_what_it_names() {
        let c = ServerConfig::from_toml(
            r#"
            data_dir = "/srv/hub"
            [relay]
            bind = "0.0.0.0:80"
            url = "http://relay.example.org"
            [hub]
            bind = ["0.0.0.0:9000"]
            public_addrs = ["203.0.113.5:9000"]
            idle_timeout_secs = 15
            max_connections = 100
            max_connections_per_endpoint = 2
            [http]
            enabled = false
            "#,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/hub"));
        assert_eq!(c.relay_url().unwrap(), "http://relay.example.org");
        assert_eq!(c.public_addrs(), vec!["203.0.113.5:9000".parse().unwrap()]);
        assert_eq!(c.idle_timeout, Duration::from_secs(15));
        assert!(c.http_bind.is_none());
        assert_eq!(c.limits.total, 100);
        assert_eq!(c.limits.per_endpoint, 2);
    }

    #[test]
    fn loopback_only_invites_are_refused_unless_everything_listens_on_loopback() {
        let e = ServerConfig::new("hub").check_reachable().unwrap_err();
        assert!(e.to_string().contains("http://127.0.0.1:3340/"), "{e}");
        assert!(e.to_string().contains("--lan-addr"), "{e}");
        ServerConfig::loopback("hub").check_reachable().unwrap();
        let named = "[relay]\nurl = \"http://xuexiao.example.cn:3340\"\n";
        ServerConfig::from_toml(named)
            .unwrap()
            .check_reachable()
            .unwrap();
        let local = "[relay]\nurl = \"http://localhost:3340\"\n";
        assert!(
            ServerConfig::from_toml(local)
                .unwrap()
                .check_reachable()
                .is_err()
        );
        let direct = "[relay]\nenabled = false\n[hub]\npublic_addrs = [\"[fd00::5]:3341\"]\n";
        ServerConfig::from_toml(direct)
            .unwrap()
            .check_reachable()
            .unwrap();
        assert!(url_is_local("http://[::1]:3340/"));
        assert!(!url_is_local("http://[fd00::5]:3340/"));
    }

    #[test]
    fn mistakes_in_the_file_are_refused_in_chinese() {
        let unknown = ServerConfig::from_toml("[hub]\nbnid = []\n").unwrap_err();
        assert!(unknown.to_string().contains("配置"), "{unknown}");
        let bad_url = ServerConfig::from_toml("[relay]\nurl = \"relay\"\n").unwrap_err();
        assert!(bad_url.to_string().contains("中继地址"), "{bad_url}");
        let nothing = ServerConfig::from_toml("[relay]\nenabled = false\n[hub]\nbind = []\n");
        assert!(nothing.is_err());
    }
}
