//! Server settings: embedded defaults, an optional TOML file on top.
//!
//! ```toml
//! data_dir = "./shouwang-hub"
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
//! certificate_days = 730
//! invite_days = 7
//!
//! [http]                          # /health and /metrics
//! bind = "127.0.0.1:3342"
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ServerError;
use crate::transport::{MAX_FRAME, RelayUrl};

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
    /// Where `/health` and `/metrics` listen; `None` serves neither.
    pub http_bind: Option<SocketAddr>,
    /// Connections with no frame for this long are closed.
    pub idle_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// How long certificates are valid.
    pub certificate_days: u32,
    /// How long invites are valid.
    pub invite_days: u32,
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
            certificate_days: 730,
            invite_days: 7,
        }
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
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ServerError::Config(e.to_string()))?;
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
        }
        if let Some(h) = file.http {
            c.http_bind = if h.enabled == Some(false) {
                None
            } else {
                h.bind.or(c.http_bind)
            };
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
        Ok(())
    }

    /// The relay URL devices are given, from the settings alone (before anything runs).
    pub fn relay_url(&self) -> Option<String> {
        self.relay_url
            .clone()
            .or_else(|| self.relay_bind.map(|b| default_relay_url(b, b.port())))
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
    relay: Option<RelaySection>,
    hub: Option<HubSection>,
    http: Option<HttpSection>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    enabled: Option<bool>,
    bind: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_empty_file_gives_the_embedded_defaults() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DATA_DIR));
        assert_eq!(c.relay_bind.unwrap().port(), RELAY_PORT);
        assert_eq!(c.relay_url().unwrap(), "http://127.0.0.1:3340/");
        assert!(c.public_addrs().is_empty());
        assert_eq!(c.http_bind.unwrap().port(), HTTP_PORT);
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
