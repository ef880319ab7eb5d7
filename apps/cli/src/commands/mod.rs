//! The commands. Each module takes parsed arguments and a [`Ctx`], calls the core, and prints.

pub mod bundle;
pub mod care;
pub mod children;
pub mod departure;
pub mod network;
pub mod privacy;
pub mod school;
pub mod work;

use std::io::Write;
use std::path::PathBuf;

use shouwang_core::Archive;
use shouwang_core::store::StoreKey;

use crate::error::{CliError, Result};

/// What every command gets: where the store is, how to print, and where to print.
pub struct Ctx {
    pub store: PathBuf,
    /// A key file `init-school` is to make (`--key-file` naming a file that does not exist
    /// yet): the new store is encrypted with a new key written there.
    pub new_key_file: Option<PathBuf>,
    /// The store's key (`--key-file`), if it is encrypted.
    pub key: Option<StoreKey>,
    pub json: bool,
    pub out: Box<dyn Write>,
    /// The command as typed, without the store and key file (for the access log).
    pub command: String,
    /// How long a network command waits to reach its peer (`--connect-timeout`).
    pub connect_timeout: std::time::Duration,
}

/// The command line as typed, for the access log: the arguments after the program, leaving
/// out `--store` and `--key-file` with their values (paths say nothing about the report).
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--store" || a == "--key-file" {
            skip = true;
            continue;
        }
        if a.starts_with("--store=") || a.starts_with("--key-file=") {
            continue;
        }
        out.push(a);
    }
    out.join(" ")
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("store", &self.store)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// The transport's options for a network command, with the `--connect-timeout` asked for.
    pub fn conversation_options(&self) -> shouwang_relay::transport::ConversationOptions {
        shouwang_relay::transport::ConversationOptions {
            connect_timeout: self.connect_timeout,
            ..shouwang_relay::device::default_options()
        }
    }

    /// Opens the existing archive. A missing store is reported, never created.
    pub fn open(&self) -> Result<Archive> {
        if self.store.is_dir() {
            return Err(CliError::msg(format!(
                "档案库应是一个文件，这里是目录：{}",
                self.store.display()
            )));
        }
        Archive::open_with_key(&self.store, self.key.as_ref()).map_err(|e| match e {
            shouwang_core::Error::NotInitialised => {
                CliError::msg(format!("{e}（档案库：{}）", self.store.display()))
            }
            shouwang_core::Error::NotAStore => {
                CliError::msg(format!("{e}（{}）", self.store.display()))
            }
            shouwang_core::Error::Locked if self.key.is_none() => CliError::msg(format!(
                "{e}：{} 是加密档案库，请用 --key-file 指定密钥文件",
                self.store.display()
            )),
            e => CliError::Core(e),
        })
    }

    /// Refuses a command that can only create an unencrypted store when `--key-file` is
    /// given.
    pub fn no_key(&self, what: &str) -> Result<()> {
        match self.key {
            Some(_) => Err(CliError::msg(format!(
                "{what}还不能建立加密档案库，请去掉 --key-file"
            ))),
            None => Ok(()),
        }
    }

    /// Records a report that names `children` children in the device's access log, before it
    /// is printed (see ARCHITECTURE.md, "Access records": which reports are logged).
    pub fn log_report(&self, a: &mut Archive, children: usize) -> Result<()> {
        if children > 0 {
            a.log_report(&self.command, children)?;
        }
        Ok(())
    }

    /// Writes a line of text.
    pub fn line(&mut self, s: impl AsRef<str>) -> Result<()> {
        writeln!(self.out, "{}", s.as_ref())?;
        Ok(())
    }

    /// Writes text as it is.
    pub fn text(&mut self, s: impl AsRef<str>) -> Result<()> {
        write!(self.out, "{}", s.as_ref())?;
        Ok(())
    }

    /// Writes a value as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        crate::output::json(&mut *self.out, v)
    }
}

/// Splits `key=value` arguments (the value may itself contain `=`).
pub fn key_values(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(CliError::msg(format!(
                "“{a}”应写成 键=值，例如 notes=孩子最近很开朗"
            ))),
        })
        .collect()
}

/// Today's date on this device, `YYYY-MM-DD`.
pub fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

/// Parses an optional date argument, defaulting to today.
pub fn date_or_today(field: &str, raw: Option<&str>) -> Result<chrono::NaiveDate> {
    match raw {
        Some(s) => Ok(shouwang_core::dates::parse_date(field, s)?),
        None => Ok(today()),
    }
}

/// The command that does what a message from the core advises, for a message that advises
/// one (the core says who does what, in words every app shows; on the command line that is a
/// command to type): empty otherwise.
pub fn command_for(message: &str) -> String {
    use shouwang_core::archive::{CONSENT_ADVICE, ERASE_ADVICE, RETURN_ADVICE};
    if message.contains(ERASE_ADVICE) {
        "（命令：shouwang child erase <学生> --reason <原因>）".to_owned()
    } else if message.contains(CONSENT_ADVICE) {
        "（命令：shouwang consent record <学生> --guardian … --relation … --date … --covers basic,private --form <编号>）"
            .to_owned()
    } else if message.contains(RETURN_ADVICE) {
        "（命令：shouwang child return <学生>）".to_owned()
    } else {
        String::new()
    }
}
