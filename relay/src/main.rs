//! `shouwang-relay`: parses flags and the configuration, then hands over to the library.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shouwang_relay::server::reach::{self, Reach};
use shouwang_relay::server::{self, KeySource, ServerConfig, ServerError, commands};

/// 守望中继与学校服务器：iroh 中继 + 学校数据中心
#[derive(Debug, Parser)]
#[command(name = "shouwang-relay", version)]
struct Cli {
    /// 配置文件（TOML；不写则用环境变量 SHOUWANG_RELAY_CONFIG，再不然用
    /// ~/.config/shouwang/relay.toml，没有这个文件时用内置默认值）
    #[arg(long, global = true, value_name = "文件")]
    config: Option<PathBuf>,
    /// 数据目录（覆盖配置文件；默认 ./shouwang-hub）
    #[arg(long, global = true, value_name = "目录")]
    data_dir: Option<PathBuf>,
    /// 数据密钥文件（加密 hub.db 和密钥文件；覆盖配置文件的 [data_key]；默认在配置文件旁，
    /// 没有配置文件时在 ~/.config/shouwang/hub-data.key）
    #[arg(long, global = true, value_name = "文件")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 运行中继和学校服务器，直到收到 Ctrl-C 或 SIGTERM
    Serve {
        /// 中继监听地址（默认 0.0.0.0:3340）
        #[arg(long, value_name = "地址:端口")]
        relay_bind: Option<SocketAddr>,
        /// 不运行内置中继
        #[arg(long)]
        no_relay: bool,
        /// 学校服务器的 UDP 地址（可重复；默认 0.0.0.0:3341 和 [::]:3341）
        #[arg(long, value_name = "地址:端口")]
        hub_bind: Vec<SocketAddr>,
        /// /health、/metrics 和办公室网页的监听地址（默认 127.0.0.1:3342；学校局域网用 0.0.0.0:3342）
        #[arg(long, value_name = "地址:端口")]
        http_bind: Option<SocketAddr>,
    },
    /// 在数据目录里建立学校：档案库和学校签名密钥
    InitSchool {
        /// 学校名称
        #[arg(long, value_name = "校名")]
        name: String,
        /// 所在乡镇
        #[arg(long, value_name = "乡镇")]
        town: String,
        /// 管理员姓名
        #[arg(long, value_name = "姓名")]
        admin: String,
        /// 管理员角色（校长或档案管理员）
        #[arg(long, default_value = "校长", value_name = "角色")]
        admin_role: String,
        /// 亲情电话
        #[arg(long, value_name = "电话")]
        hotline: Option<String>,
        #[command(flatten)]
        reach: ReachArgs,
    },
    /// 设置手机连接本服务器用的地址（写入配置文件，serve 和 invite 都读它）
    #[command(group(clap::ArgGroup::new("where").required(true).multiple(true)
        .args(["lan_addr", "public_addr", "local_only"])))]
    Address {
        #[command(flatten)]
        reach: ReachArgs,
    },
    /// 生成邀请码（文字、终端二维码和 PNG），需要时把成员加入学校
    Invite {
        /// 角色，如 班主任、爱心妈妈。新成员必填；已有成员只能填其现有角色（邀请不会改变角色），不填则按其现有角色
        #[arg(long, value_name = "角色")]
        role: Option<String>,
        /// 成员姓名或编号
        #[arg(long, value_name = "成员")]
        member: String,
        /// 有效天数（默认 7 天）
        #[arg(long, value_name = "天数")]
        days: Option<u32>,
        /// 另存一张二维码图片（不能放在数据目录里；图片就是邀请码，交给本人后请删除）
        #[arg(long, value_name = "文件")]
        png: Option<PathBuf>,
    },
    /// 备份学校服务器的数据（服务器运行时也可以；备份文件用数据密钥加密，不含数据密钥）
    Backup {
        /// 备份文件（不会覆盖已有的文件）
        #[arg(long, value_name = "文件")]
        out: PathBuf,
    },
    /// 从备份恢复到一个新的（或空的）数据目录（不会覆盖已有的数据；需要同一把数据密钥）
    Restore {
        /// backup 做的备份文件
        #[arg(long, value_name = "文件")]
        from: PathBuf,
    },
    /// 把旧版未加密的数据目录就地转换为加密格式（数据密钥按配置的 [data_key] 存放）
    EncryptData,
    /// 列出登记的设备及其状态（已停用的设备清除本机档案时未送达多少修改）
    Devices,
    /// 发送记录：服务器把哪些档案在何时发给了哪台设备（最新的在前；只记编号，不记内容）
    Deliveries {
        /// 只看这台设备（设备编号或其前至少 6 位）
        #[arg(long, value_name = "设备")]
        device: Option<String>,
        /// 只看这名学生的档案（姓名、学籍号或编号；已删除的学生用编号）
        #[arg(long, value_name = "学生")]
        child: Option<String>,
        /// 最多列出多少条（默认 200）
        #[arg(long, value_name = "条数")]
        limit: Option<usize>,
    },
    /// 设置办公室网页的登录密码（校长/领导组、档案管理员、班主任）：在终端上输入两次（不显示），
    /// 或从标准输入读一行
    OfficePassword {
        /// 成员姓名或编号
        #[arg(long, value_name = "成员")]
        member: String,
    },
    /// 从备份恢复后，没有管理员的设备能先同步时：让备份里已登记的手机先同步
    AdmitPhones,
    /// 停用丢失的设备或离开的成员：服务器从此拒绝它们，设备下次连上时清除本机档案
    #[command(group(clap::ArgGroup::new("which").required(true).args(["device", "member"])))]
    Revoke {
        /// 设备码（shouwang sync --wait 显示的）或设备编号（至少前 6 位，见 shouwang device list）
        #[arg(long, value_name = "设备")]
        device: Option<String>,
        /// 成员姓名或编号：停用该成员及其全部设备
        #[arg(long, value_name = "成员")]
        member: Option<String>,
    },
}

/// Where phones reach the hub (`init-school`, `address`).
#[derive(Debug, clap::Args)]
struct ReachArgs {
    /// 本机的局域网地址：手机在学校里用它连接（不写时在终端里询问；检测到的地址会列出）
    #[arg(long, value_name = "地址")]
    lan_addr: Option<IpAddr>,
    /// 县里给的公网域名或地址（可选）：手机在校外经它连接中继
    #[arg(long, value_name = "地址")]
    public_addr: Option<String>,
    /// 只在本机演示：全部监听 127.0.0.1，别的设备连不上
    #[arg(long, conflicts_with_all = ["lan_addr", "public_addr"])]
    local_only: bool,
}

/// The configuration file: `--config`, else `$SHOUWANG_RELAY_CONFIG`, else the user's
/// default (`~/.config/shouwang/relay.toml`), which is read only if it exists.
fn config_file(cli: &Cli) -> Option<(PathBuf, bool)> {
    if let Some(p) = &cli.config {
        return Some((p.clone(), true));
    }
    if let Some(p) = std::env::var_os("SHOUWANG_RELAY_CONFIG").filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    server::default_config_file().map(|p| (p, false))
}

/// The settings and the configuration file they came from (`None`: embedded defaults) with
/// its text. `creating`: a named file that does not exist yet is not an error (`init-school`
/// and `address` write it).
fn load_config(
    cli: &Cli,
    creating: bool,
) -> Result<(ServerConfig, Option<PathBuf>, String), ServerError> {
    let file = config_file(cli);
    let (mut config, path, text) = match &file {
        Some((path, named)) if *named || creating || path.exists() => {
            match std::fs::read_to_string(path) {
                Ok(text) => (ServerConfig::from_toml(&text)?, Some(path.clone()), text),
                Err(e) if creating && e.kind() == std::io::ErrorKind::NotFound => (
                    ServerConfig::new(server::DATA_DIR),
                    Some(path.clone()),
                    String::new(),
                ),
                Err(e) => {
                    return Err(ServerError::Config(format!(
                        "读不了配置文件 {}：{}",
                        path.display(),
                        shouwang_core::error::io_text(&e)
                    )));
                }
            }
        }
        _ => (ServerConfig::new(server::DATA_DIR), None, String::new()),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(k) = &cli.key_file {
        config.data_key = Some(KeySource::File(k.clone()));
    } else if config.data_key.is_none()
        && let Some(k) = server::default_key_file(path.as_deref())
    {
        config.data_key = Some(KeySource::File(k));
    }
    config.check()?;
    Ok((config, path, text))
}

/// Decides where phones reach the hub: the flags, else (when the settings do not already
/// reach beyond loopback) a question on the terminal; `Ok(None)`: nothing to change.
fn choose_reach(args: &ReachArgs, config: &ServerConfig) -> Result<Option<Reach>, ServerError> {
    if let Some(r) = reach::from_flags(args.lan_addr, args.public_addr.as_deref(), args.local_only)?
    {
        return Ok(Some(r));
    }
    if config.check_reachable().is_ok() {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        return Err(reach::not_given());
    }
    let chosen = reach::ask(&mut std::io::stdin().lock(), &mut std::io::stderr())?;
    chosen
        .map(Some)
        .ok_or_else(|| ServerError::Refused("已取消，没有改动任何文件".into()))
}

/// The configuration with `reach` written in, as (settings, file text); `None` if the reach is
/// already what the settings say.
fn with_reach(
    cli: &Cli,
    config: &ServerConfig,
    path: Option<&Path>,
    text: &str,
    reach: &Reach,
) -> Result<(ServerConfig, PathBuf, String), ServerError> {
    let path = path.map(Path::to_owned).ok_or_else(|| {
        ServerError::Refused("找不到配置目录（没有 HOME），请用 --config 指定配置文件".into())
    })?;
    let new = text.trim().is_empty();
    let key = config.key_source();
    let pinned = reach::Pinned {
        data_dir: (new || cli.data_dir.is_some()).then_some(config.data_dir.as_path()),
        key: (new || cli.key_file.is_some()).then_some(&key),
    };
    let text = reach::apply(text, reach, config, &pinned)?;
    let mut updated = ServerConfig::from_toml(&text)?;
    updated.data_key = Some(updated.data_key.unwrap_or(key));
    updated.check()?;
    updated.check_reachable()?;
    Ok((updated, path, text))
}

async fn run(cli: Cli) -> Result<(), ServerError> {
    let creating = matches!(
        cli.command,
        Command::InitSchool { .. } | Command::Address { .. }
    );
    let (mut config, path, text) = load_config(&cli, creating)?;
    match &cli.command {
        Command::InitSchool { reach, .. } => {
            let mut written = None;
            if let Some(r) = choose_reach(reach, &config)? {
                let (updated, path, text) = with_reach(&cli, &config, path.as_deref(), &text, &r)?;
                config = updated;
                written = Some((path, text, r));
            }
            let Command::InitSchool {
                name,
                town,
                admin,
                admin_role,
                hotline,
                ..
            } = &cli.command
            else {
                unreachable!()
            };
            let mut out = commands::init_school_command(
                &config,
                name,
                town,
                admin,
                admin_role,
                hotline.as_deref(),
            )?;
            if let Some((path, text, r)) = written {
                out.push_str(&commands::write_config(&path, &text, &r)?);
            }
            print!("{out}");
            return Ok(());
        }
        Command::Address { reach } => {
            let r = choose_reach(reach, &config)?
                .ok_or_else(|| ServerError::Refused("没有给出地址".into()))?;
            let (_, path, text) = with_reach(&cli, &config, path.as_deref(), &text, &r)?;
            print!("{}", commands::write_config(&path, &text, &r)?);
            return Ok(());
        }
        _ => {}
    }
    match cli.command {
        Command::InitSchool { .. } | Command::Address { .. } => Ok(()),
        Command::Serve {
            relay_bind,
            no_relay,
            hub_bind,
            http_bind,
        } => {
            if no_relay {
                config.relay_bind = None;
            } else if relay_bind.is_some() {
                config.relay_bind = relay_bind;
            }
            if !hub_bind.is_empty() {
                config.hub_bind = hub_bind;
            }
            if http_bind.is_some() {
                config.http_bind = http_bind;
            }
            server::serve_until_signal(config).await
        }
        Command::Invite {
            role,
            member,
            days,
            png,
        } => {
            print!(
                "{}",
                commands::invite_command(&config, &member, role.as_deref(), days, png)?
            );
            Ok(())
        }
        Command::Backup { out } => {
            print!("{}", commands::backup_command(&config, &out)?);
            Ok(())
        }
        Command::Restore { from } => {
            print!("{}", commands::restore_command(&config, &from)?);
            Ok(())
        }
        Command::EncryptData => {
            print!("{}", commands::encrypt_data_command(&config)?);
            Ok(())
        }
        Command::Devices => {
            print!("{}", commands::devices_command(&config)?);
            Ok(())
        }
        Command::Deliveries {
            device,
            child,
            limit,
        } => {
            print!(
                "{}",
                commands::deliveries_command(&config, device.as_deref(), child.as_deref(), limit)?
            );
            Ok(())
        }
        Command::OfficePassword { member } => {
            let password = read_password()?;
            print!(
                "{}",
                commands::office_password_command(&config, &member, &password)?
            );
            Ok(())
        }
        Command::AdmitPhones => {
            print!("{}", commands::admit_phones_command(&config)?);
            Ok(())
        }
        Command::Revoke { device, member } => {
            print!(
                "{}",
                commands::revoke_command(&config, device.as_deref(), member.as_deref())?
            );
            Ok(())
        }
    }
}

/// The new office password: typed twice on a terminal (not shown), else one line of stdin.
fn read_password() -> Result<String, ServerError> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| {
            ServerError::Refused(format!("读不了密码：{}", shouwang_core::error::io_text(&e)))
        })?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt_hidden("新密码（至少 8 个字符，输入时不显示）：")?;
    let second = prompt_hidden("再输入一次：")?;
    if first != second {
        return Err(ServerError::Refused(
            "两次输入的密码不一致，没有改动任何设置".into(),
        ));
    }
    Ok(first)
}

/// Reads one line from the terminal with echo off (restored afterwards).
fn prompt_hidden(prompt: &str) -> Result<String, ServerError> {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    #[cfg(target_os = "linux")]
    let saved = {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let saved = tcgetattr(&stdin).ok();
        if let Some(old) = &saved {
            let mut quiet = old.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            let _ = tcsetattr(&stdin, OptionalActions::Now, &quiet);
        }
        saved
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    #[cfg(target_os = "linux")]
    if let Some(old) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &old);
    }
    eprintln!();
    read.map_err(|e| {
        ServerError::Refused(format!("读不了密码：{}", shouwang_core::error::io_text(&e)))
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Threads of tokio's blocking pool in the `shouwang-relay` process.
const HUB_BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return shouwang_relay::usage::report(&e, "shouwang-relay"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    // Conversation callbacks run on tokio's blocking pool and mostly wait there for one of the
    // hub's two archives; with tokio's default of up to 512 threads, 200 phones syncing at once
    // made the hub start over 200 threads (BENCHMARKS.md §7). Sixteen keep both archives busy;
    // the rest of the callbacks wait in tokio's queue instead of in a thread each.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(HUB_BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "错误：无法启动运行时：{}",
                shouwang_core::error::io_text(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::FAILURE
        }
    }
}
