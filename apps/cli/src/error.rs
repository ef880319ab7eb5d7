//! The CLI's error: a core error, or a message of the CLI's own. Both display as one Chinese
//! sentence; `main` prints it after `错误：`.

use std::fmt;
use std::path::Path;

/// Result alias for the CLI.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Something that stops a command.
#[derive(Debug)]
pub enum CliError {
    /// From the core; its `Display` is already a Chinese sentence.
    Core(shouwang_core::Error),
    /// A message of the CLI's own, in Chinese.
    Msg(String),
    /// Writing to the terminal failed (a closed pipe): nothing useful left to say.
    Output(std::io::Error),
}

impl CliError {
    /// A message of the CLI's own.
    pub fn msg(s: impl Into<String>) -> Self {
        CliError::Msg(s.into())
    }

    /// Whether the output pipe was closed (the reader went away): exit quietly.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Msg(s) => f.write_str(s),
            CliError::Output(e) => write!(f, "无法输出结果：{}", shouwang_core::error::io_text(e)),
        }
    }
}

impl std::error::Error for CliError {}

impl From<shouwang_core::Error> for CliError {
    fn from(e: shouwang_core::Error) -> Self {
        CliError::Core(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

impl From<serde_json::Error> for CliError {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            CliError::Output(std::io::Error::from(e))
        } else {
            // serde_json's own text is English and about our types: a bug, not the user's.
            CliError::Msg("生成 JSON 失败（程序错误），请联系学校管理员".into())
        }
    }
}

/// Describes a failed file operation in Chinese, naming the file.
pub fn file_error(what: &str, path: &Path, e: &std::io::Error) -> CliError {
    use std::io::ErrorKind::*;
    let p = path.display();
    CliError::Msg(match e.kind() {
        NotFound => format!("找不到{what}：{p}"),
        PermissionDenied => format!("没有权限访问{what}：{p}"),
        IsADirectory => format!("{what}是一个目录，不是文件：{p}"),
        AlreadyExists => format!("{what}已经存在：{p}"),
        _ => format!("无法读写{what}：{p}"),
    })
}

/// Reads a whole file, with a Chinese error naming it.
pub fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(CliError::msg(format!(
            "{what}是一个目录，不是文件：{}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| file_error(what, path, &e))
}

/// [`read_file`] for a data file (a bundle): one larger than any bundle opened
/// (`seal::MAX_FILE`) is refused by its size, before a byte of it is read into memory.
pub fn read_data_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let max = shouwang_core::bundle::seal::MAX_FILE as u64;
    let too_large = || {
        CliError::msg(format!(
            "{what}太大（超过 {} MB），无法导入：{}",
            max / 1024 / 1024,
            path.display()
        ))
    };
    let size = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if size.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    if path.is_dir() {
        return read_file(what, path);
    }
    // Read at most one byte past the limit: a pipe or a device has no size to trust.
    let file = std::fs::File::open(path).map_err(|e| file_error(what, path, &e))?;
    let mut bytes = Vec::with_capacity(size.map_or(0, |n| n as usize + 1));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(what, path, &e))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Writes a file whole or not at all: into a temporary file beside it, then renamed over it.
pub fn write_file_atomic(what: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(CliError::msg(format!("目录不存在：{}", dir.display())));
    }
    let name = path
        .file_name()
        .ok_or_else(|| CliError::msg(format!("{what}的文件名不正确：{}", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(file_error(what, path, &e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// One error of every variant the CLI shows, with the foreign errors it converts (the
    /// core's are covered by the core's own test, `error::tests::every_error_reads_in_chinese`).
    /// The `match` lists every variant: adding one without a case here does not compile.
    fn every_error() -> Vec<CliError> {
        use std::io::ErrorKind as K;
        let dir = Path::new("/tmp/不存在的目录");
        let mut all = vec![
            CliError::Core(shouwang_core::Error::NotInitialised),
            CliError::msg("找不到数据文件：/tmp/x.swb"),
            CliError::from(serde_json::from_str::<u8>("not json").unwrap_err()),
        ];
        for kind in [
            K::BrokenPipe,
            K::NotFound,
            K::PermissionDenied,
            K::StorageFull,
            K::Other,
            K::TimedOut,
        ] {
            all.push(CliError::from(std::io::Error::new(kind, "timed out")));
            all.push(file_error(
                "数据文件",
                &dir.join("x.swb"),
                &std::io::Error::new(kind, "Permission denied (os error 13)"),
            ));
        }
        all.push(read_file("数据文件", dir).unwrap_err());
        all.push(write_file_atomic("数据文件", &dir.join("x.swb"), b"x").unwrap_err());
        for e in &all {
            match e {
                CliError::Core(_) | CliError::Msg(_) | CliError::Output(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_error_reads_in_chinese() {
        shouwang_core::error::check_translated(every_error()).unwrap();
    }
}
