//! `shouwang-relay`: parses flags and the configuration, then hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shouwang_relay::server::{self, KeySource, ServerConfig, ServerError, commands};

/// 守望中继与学校服务器：iroh 中继 + 学校数据中心
#[derive(Debug, Parser)]
#[command(name = "shouwang-relay", version)]
struct Cli {
    /// 配置文件（TOML，可选；不写则用内置默认值）
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// 数据目录（覆盖配置文件；默认 ./shouwang-hub）
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// 数据密钥文件（加密 hub.db 和密钥文件；覆盖配置文件的 [data_key]；默认在配置文件旁，
    /// 没有配置文件时在 ~/.config/shouwang/hub-data.key）
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 运行中继和学校服务器，直到收到 Ctrl-C 或 SIGTERM
    Serve {
        /// 中继监听地址（默认 0.0.0.0:3340）
        #[arg(long)]
        relay_bind: Option<SocketAddr>,
        /// 不运行内置中继
        #[arg(long)]
        no_relay: bool,
        /// 学校服务器的 UDP 地址（可重复；默认 0.0.0.0:3341 和 [::]:3341）
        #[arg(long)]
        hub_bind: Vec<SocketAddr>,
        /// /health 与 /metrics 的监听地址（默认 127.0.0.1:3342）
        #[arg(long)]
        http_bind: Option<SocketAddr>,
    },
    /// 在数据目录里建立学校：档案库和学校签名密钥
    InitSchool {
        /// 学校名称
        #[arg(long)]
        name: String,
        /// 所在乡镇
        #[arg(long)]
        town: String,
        /// 管理员姓名
        #[arg(long)]
        admin: String,
        /// 管理员角色（校长或档案管理员）
        #[arg(long, default_value = "校长")]
        admin_role: String,
        /// 亲情电话
        #[arg(long)]
        hotline: Option<String>,
    },
    /// 生成邀请码（文字、终端二维码和 PNG），需要时把成员加入学校
    Invite {
        /// 角色，如 班主任、爱心妈妈。新成员必填；已有成员只能填其现有角色（邀请不会改变角色），不填则按其现有角色
        #[arg(long)]
        role: Option<String>,
        /// 成员姓名或编号
        #[arg(long)]
        member: String,
        /// 有效天数（默认 7 天）
        #[arg(long)]
        days: Option<u32>,
        /// 二维码图片的保存位置（默认在数据目录的 invites/ 里）
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// 把旧版未加密的数据目录就地转换为加密格式（数据密钥按配置的 [data_key] 存放）
    EncryptData,
    /// 列出登记的设备及其状态（已停用的设备清除本机档案时未送达多少修改）
    Devices,
    /// 停用丢失的设备或离开的成员：服务器从此拒绝它们，设备下次连上时清除本机档案
    #[command(group(clap::ArgGroup::new("which").required(true).args(["device", "member"])))]
    Revoke {
        /// 设备码（shouwang sync --wait 显示的）或设备编号（至少前 6 位，见 shouwang device list）
        #[arg(long)]
        device: Option<String>,
        /// 成员姓名或编号：停用该成员及其全部设备
        #[arg(long)]
        member: Option<String>,
    },
}

fn load_config(cli: &Cli) -> Result<ServerConfig, ServerError> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ServerError::Config(format!("{}：{e}", path.display())))?;
            ServerConfig::from_toml(&text)?
        }
        None => ServerConfig::new(server::DATA_DIR),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(k) = &cli.key_file {
        config.data_key = Some(KeySource::File(k.clone()));
    } else if config.data_key.is_none()
        && let Some(k) = server::default_key_file(cli.config.as_deref())
    {
        config.data_key = Some(KeySource::File(k));
    }
    config.check()?;
    Ok(config)
}

async fn run(cli: Cli) -> Result<(), ServerError> {
    let mut config = load_config(&cli)?;
    match cli.command {
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
        Command::InitSchool {
            name,
            town,
            admin,
            admin_role,
            hotline,
        } => {
            let out = commands::init_school_command(
                &config,
                &name,
                &town,
                &admin,
                &admin_role,
                hotline.as_deref(),
            )?;
            print!("{out}");
            Ok(())
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
        Command::EncryptData => {
            print!("{}", commands::encrypt_data_command(&config)?);
            Ok(())
        }
        Command::Devices => {
            print!("{}", commands::devices_command(&config)?);
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

/// Threads of tokio's blocking pool in the `shouwang-relay` process.
const HUB_BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
            eprintln!("错误：无法启动运行时：{e}");
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
