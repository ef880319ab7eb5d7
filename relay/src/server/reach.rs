//! Where phones reach the hub: the school PC's LAN address and, where the county gives one, a
//! public name. `init-school` and `address` ask for it (or take it from flags), check it, and
//! write it into the configuration file that `serve` and `invite` read:
//!
//! - a LAN address goes into `[hub] public_addrs` (with the hub's port) and, unless a public
//!   name is given, into `[relay] url`; it must be an address of this machine;
//! - a public name (or address) goes into `[relay] url`; an IP address also into
//!   `[hub] public_addrs`;
//! - `--local-only` (a demo on this PC) binds the relay and the hub to 127.0.0.1 instead, so
//!   the loopback addresses in its invites are on purpose.
//!
//! Settings the file already has are kept ([`toml_edit`] edits it in place, comments too).
//! [`ServerConfig::check_reachable`] is the rule `serve` and `invite` enforce.

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::config::{HUB_PORT, RELAY_PORT, ServerConfig};
use super::{KeySource, ServerError};

/// Where phones reach the hub, as chosen by the school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The school PC's LAN address and, optionally, a public name or address.
    Addresses {
        lan: Option<IpAddr>,
        public: Option<String>,
    },
    /// Only this PC (a demo): everything bound to 127.0.0.1.
    LocalOnly,
}

/// This machine's addresses a phone could use: every interface address that is neither
/// loopback, unspecified nor link-local, with the interface's name; IPv4 first.
pub fn local_addrs() -> Vec<(String, IpAddr)> {
    let mut out: Vec<(String, IpAddr)> = Vec::new();
    for iface in netdev::get_interfaces() {
        for a in &iface.ipv4 {
            let ip = a.addr();
            if !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local() {
                out.push((iface.name.clone(), IpAddr::V4(ip)));
            }
        }
        for a in &iface.ipv6 {
            let ip = a.addr();
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            if !ip.is_loopback() && !ip.is_unspecified() && !link_local {
                out.push((iface.name.clone(), IpAddr::V6(ip)));
            }
        }
    }
    out.sort_by_key(|(_, ip)| (ip.is_ipv6(), !is_private(*ip)));
    out.dedup_by_key(|(_, ip)| *ip);
    out
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// `10.0.0.5（eth0）、192.168.1.3（wlan0）`, or `没有找到` when there is none.
pub fn describe(addrs: &[(String, IpAddr)]) -> String {
    if addrs.is_empty() {
        return "没有找到，请检查网线或无线网".into();
    }
    addrs
        .iter()
        .map(|(name, ip)| format!("{ip}（{name}）"))
        .collect::<Vec<_>>()
        .join("、")
}

/// The one line that says why invites would not reach any phone, and what to run.
pub fn unreachable_hint(shown: &str) -> String {
    format!(
        "邀请码里只会有本机地址（{shown}），手机连不上这台服务器；请运行 \
         shouwang-relay address --lan-addr <本机局域网地址>（本机地址：{}）把地址写入配置，\
         只在本机演示请用 --local-only",
        describe(&local_addrs())
    )
}

/// Checks a LAN address: not loopback or unspecified, and one of `local`'s.
pub fn check_lan(ip: IpAddr, local: &[(String, IpAddr)]) -> Result<(), ServerError> {
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(ServerError::Refused(format!(
            "{ip} 是本机回环地址，手机连不上；请填本机的局域网地址（本机地址：{}）",
            describe(local)
        )));
    }
    if !local.iter().any(|(_, a)| *a == ip) {
        return Err(ServerError::Refused(format!(
            "本机没有地址 {ip}；请填本机的局域网地址（本机地址：{}）",
            describe(local)
        )));
    }
    Ok(())
}

/// Checks a public name or address (no scheme, no port, no path); returns it trimmed.
pub fn check_public(host: &str) -> Result<String, ServerError> {
    let host = host.trim().trim_end_matches('.');
    let bad = |why: &str| {
        ServerError::Refused(format!(
            "公网地址“{host}”{why}：请只填域名或 IP，如 xuexiao.example.cn"
        ))
    };
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        if ip.is_loopback() || ip.is_unspecified() {
            return Err(bad("是本机地址"));
        }
        return Ok(ip.to_string());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("不是有效的域名"));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Err(bad("是本机地址"));
    }
    Ok(host.to_ascii_lowercase())
}

/// Checks what flags give; `None` when they give nothing.
pub fn from_flags(
    lan: Option<IpAddr>,
    public: Option<&str>,
    local_only: bool,
) -> Result<Option<Reach>, ServerError> {
    if local_only {
        return Ok(Some(Reach::LocalOnly));
    }
    if lan.is_none() && public.is_none() {
        return Ok(None);
    }
    if let Some(ip) = lan {
        check_lan(ip, &local_addrs())?;
    }
    let public = public.map(check_public).transpose()?;
    Ok(Some(Reach::Addresses { lan, public }))
}

/// The refusal when nothing says where phones reach the hub and no one can be asked.
pub fn not_given() -> ServerError {
    ServerError::Refused(format!(
        "请用 --lan-addr 指定手机连接这台电脑用的局域网地址（本机地址：{}），县里给了公网域名再加 \
         --public-addr，只在本机演示用 --local-only",
        describe(&local_addrs())
    ))
}

/// Asks on a terminal: the LAN address (the detected ones numbered, Enter for the first) and a
/// public name (Enter for none), then confirms. `None` if the user declines.
pub fn ask(input: &mut impl BufRead, out: &mut impl Write) -> Result<Option<Reach>, ServerError> {
    let local = local_addrs();
    let io = |e: std::io::Error| {
        ServerError::Refused(format!(
            "无法读取输入：{}",
            shouwang_core::error::io_text(&e)
        ))
    };
    let mut line = String::new();
    let read = |input: &mut dyn BufRead, line: &mut String| -> Result<String, ServerError> {
        line.clear();
        input.read_line(line).map_err(io)?;
        Ok(line.trim().to_owned())
    };
    writeln!(out, "手机要通过哪个地址连接这台电脑？").map_err(io)?;
    for (i, (name, ip)) in local.iter().enumerate() {
        writeln!(out, "  {}) {ip}（{name}）", i + 1).map_err(io)?;
    }
    write!(out, "请输入序号或地址（直接回车选 1）：").map_err(io)?;
    out.flush().map_err(io)?;
    let answer = read(input, &mut line)?;
    let lan = if answer.is_empty() {
        local.first().map(|(_, ip)| *ip).ok_or_else(not_given)?
    } else if let Some(ip) = answer
        .parse::<usize>()
        .ok()
        .and_then(|n| local.get(n.checked_sub(1)?))
    {
        ip.1
    } else {
        answer
            .parse::<IpAddr>()
            .map_err(|_| ServerError::Refused(format!("“{answer}”不是序号也不是地址")))?
    };
    check_lan(lan, &local)?;
    write!(out, "县里给的公网域名或地址（没有就直接回车）：").map_err(io)?;
    out.flush().map_err(io)?;
    let answer = read(input, &mut line)?;
    let public = (!answer.is_empty())
        .then(|| check_public(&answer))
        .transpose()?;
    let reach = Reach::Addresses {
        lan: Some(lan),
        public,
    };
    write!(out, "手机将经 {} 连接，确认吗？[Y/n] ", summary(&reach)).map_err(io)?;
    out.flush().map_err(io)?;
    let answer = read(input, &mut line)?;
    Ok(matches!(answer.as_str(), "" | "y" | "Y" | "是").then_some(reach))
}

/// `10.0.0.5` / `10.0.0.5 和 xuexiao.example.cn` / `本机（只供演示）`.
pub fn summary(reach: &Reach) -> String {
    match reach {
        Reach::LocalOnly => "本机 127.0.0.1（只供演示，别的设备连不上）".into(),
        Reach::Addresses { lan, public } => match (lan, public) {
            (Some(l), Some(p)) => format!("局域网 {l} 和公网 {p}"),
            (Some(l), None) => format!("局域网 {l}"),
            (None, Some(p)) => format!("公网 {p}"),
            (None, None) => String::new(),
        },
    }
}

/// What a new configuration file records besides the addresses: the data directory and the
/// data key's file, so later commands use exactly these.
#[derive(Debug, Clone, Default)]
pub struct Pinned<'a> {
    pub data_dir: Option<&'a Path>,
    pub key: Option<&'a KeySource>,
}

/// The configuration file's text (`text`, empty for a new file) with `reach` written into it,
/// the ports taken from `base` (the settings now in force).
pub fn apply(
    text: &str,
    reach: &Reach,
    base: &ServerConfig,
    pinned: &Pinned<'_>,
) -> Result<String, ServerError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| super::config::toml_error(text, e.span()))?;
    if text.trim().is_empty() {
        doc.decor_mut().set_prefix(
            "# shouwang-relay 的配置：数据目录、数据密钥，以及手机连接服务器用的地址。\n\
             # 地址由 init-school 或 shouwang-relay address 写入；其余设置见 ARCHITECTURE.md。\n",
        );
    }
    if let Some(dir) = pinned.data_dir {
        doc["data_dir"] = value(absolute(dir));
    }
    match pinned.key {
        Some(KeySource::File(p)) => table(&mut doc, "data_key")["file"] = value(absolute(p)),
        Some(KeySource::Env(v)) => table(&mut doc, "data_key")["env"] = value(v.as_str()),
        Some(KeySource::Credential(c)) => {
            table(&mut doc, "data_key")["credential"] = value(c.as_str())
        }
        None => {}
    }
    let relay_port = base.relay_bind.map_or(RELAY_PORT, |b| b.port());
    let hub_port = base.hub_bind.first().map_or(HUB_PORT, |b| b.port());
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match reach {
        Reach::LocalOnly => {
            if base.relay_bind.is_some() {
                let relay = table(&mut doc, "relay");
                relay["bind"] = value(SocketAddr::new(loopback, relay_port).to_string());
                relay.remove("url");
            }
            let hub = table(&mut doc, "hub");
            hub["bind"] = value(strings([SocketAddr::new(loopback, hub_port)]));
            hub.remove("public_addrs");
        }
        Reach::Addresses { lan, public } => {
            let public_ip = public.as_deref().and_then(|p| p.parse::<IpAddr>().ok());
            let addrs: Vec<SocketAddr> = lan
                .iter()
                .chain(public_ip.iter())
                .map(|ip| SocketAddr::new(*ip, hub_port))
                .collect();
            let v6 = lan.is_some_and(|ip| ip.is_ipv6());
            if let Some(bind) = base.relay_bind {
                let host = match (public, lan) {
                    (Some(p), _) => url_host(p),
                    (None, Some(l)) => url_host(&l.to_string()),
                    (None, None) => unreachable!("an address was given"),
                };
                let relay = table(&mut doc, "relay");
                relay["url"] = value(format!("http://{host}:{relay_port}/"));
                if bind.ip().is_loopback() {
                    let any = if v6 {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    };
                    relay["bind"] = value(SocketAddr::new(any, relay_port).to_string());
                }
            }
            let hub = table(&mut doc, "hub");
            hub["public_addrs"] = value(strings(addrs));
            if base.hub_bind.iter().any(|b| b.ip().is_loopback()) {
                hub["bind"] = value(strings([
                    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), hub_port),
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), hub_port),
                ]));
            }
        }
    }
    let mut out = doc.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn url_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

fn strings(addrs: impl IntoIterator<Item = SocketAddr>) -> Array {
    addrs.into_iter().map(|a| a.to_string()).collect()
}

/// The table `name`, created if missing (a non-table there is replaced).
fn table<'d>(doc: &'d mut DocumentMut, name: &str) -> &'d mut Table {
    let item = doc.entry(name).or_insert_with(|| Item::Table(Table::new()));
    if !item.is_table() {
        *item = Item::Table(Table::new());
    }
    item.as_table_mut().unwrap_or_else(|| unreachable!())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn lan(ip: &str) -> Reach {
        Reach::Addresses {
            lan: Some(ip.parse().unwrap()),
            public: None,
        }
    }

    #[test]
    fn a_lan_address_goes_into_invites_and_keeps_the_other_settings() {
        let text = "# ours\ndata_dir = \"/srv/hub\"\n[hub]\nidle_timeout_secs = 15\n";
        let base = ServerConfig::from_toml(text).unwrap();
        let out = apply(text, &lan("10.203.0.1"), &base, &Pinned::default()).unwrap();
        assert!(out.starts_with("# ours"), "{out}");
        let c = ServerConfig::from_toml(&out).unwrap();
        assert_eq!(c.relay_url().unwrap(), "http://10.203.0.1:3340/");
        assert_eq!(c.public_addrs(), vec!["10.203.0.1:3341".parse().unwrap()]);
        assert_eq!(c.idle_timeout.as_secs(), 15);
        c.check_reachable().unwrap();

        // A public name: the relay by name, the hub on the LAN.
        let both = Reach::Addresses {
            lan: Some("10.203.0.1".parse().unwrap()),
            public: Some("xuexiao.example.cn".into()),
        };
        let c =
            ServerConfig::from_toml(&apply(&out, &both, &c, &Pinned::default()).unwrap()).unwrap();
        assert_eq!(c.relay_url().unwrap(), "http://xuexiao.example.cn:3340/");
        assert_eq!(c.public_addrs(), vec!["10.203.0.1:3341".parse().unwrap()]);
    }

    #[test]
    fn local_only_binds_loopback_and_a_later_address_listens_again() {
        let base = ServerConfig::new("hub");
        let out = apply("", &Reach::LocalOnly, &base, &Pinned::default()).unwrap();
        let c = ServerConfig::from_toml(&out).unwrap();
        assert!(c.relay_bind.unwrap().ip().is_loopback());
        assert!(c.hub_bind.iter().all(|b| b.ip().is_loopback()));
        c.check_reachable().unwrap();
        assert!(ServerConfig::new("hub").check_reachable().is_err());

        let out = apply(&out, &lan("192.168.1.20"), &c, &Pinned::default()).unwrap();
        let c = ServerConfig::from_toml(&out).unwrap();
        assert!(c.relay_bind.unwrap().ip().is_unspecified());
        assert!(c.hub_bind.iter().all(|b| b.ip().is_unspecified()));
        assert_eq!(c.relay_url().unwrap(), "http://192.168.1.20:3340/");
    }

    #[test]
    fn bad_addresses_are_refused_in_chinese() {
        let local = vec![("eth0".to_owned(), "10.0.0.5".parse().unwrap())];
        let e = check_lan("127.0.0.1".parse().unwrap(), &local).unwrap_err();
        assert!(e.to_string().contains("10.0.0.5（eth0）"), "{e}");
        let e = check_lan("10.0.0.6".parse().unwrap(), &local).unwrap_err();
        assert!(e.to_string().contains("本机没有地址 10.0.0.6"), "{e}");
        check_lan("10.0.0.5".parse().unwrap(), &local).unwrap();
        for bad in [
            "http://x.cn",
            "x.cn:3340",
            "",
            "localhost",
            "a b",
            "127.0.0.1",
        ] {
            assert!(check_public(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_public(" XueXiao.Example.cn ").unwrap(),
            "xuexiao.example.cn"
        );
        assert_eq!(check_public("203.0.113.5").unwrap(), "203.0.113.5");
    }

    #[test]
    fn asking_on_a_terminal_takes_a_number_and_a_name() {
        let mut out = Vec::new();
        // No local address in a test is guaranteed: answer with one, which check_lan refuses
        // unless it is this machine's; a refusal is a Chinese sentence either way.
        let mut input = std::io::Cursor::new("127.0.0.1\n\n\n");
        let e = ask(&mut input, &mut out).unwrap_err();
        assert!(e.to_string().contains("回环"), "{e}");
    }
}
