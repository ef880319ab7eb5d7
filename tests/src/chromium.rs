//! Debian's Chromium, headless, driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each message ended by a NUL;
//! the shell opens two FIFOs as those descriptors, so no `unsafe` fd juggling is needed), and
//! reading a QR code back from a screenshot. For the office console's browser test.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Chromium binary; a machine without one fails the test that asks, with what to do
/// (never a silent skip).
pub fn find_chromium() -> String {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)"
            )
        })
}

/// Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands
/// on fd 3, answers on fd 4, each message ended by a NUL), the pipes being two FIFOs the shell
/// opens for it.
#[derive(Debug)]
pub struct Chromium {
    child: std::process::Child,
    to: std::fs::File,
    from: std::io::BufReader<std::fs::File>,
    next: u64,
    session: Option<String>,
    _dir: tempfile::TempDir,
}

impl Chromium {
    /// Starts `bin` headless with a fresh profile and opens one page to drive.
    pub fn start(bin: &str) -> Chromium {
        let dir = tempfile::tempdir().unwrap();
        let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
        for f in [&inp, &out] {
            assert!(Command::new("mkfifo").arg(f).status().unwrap().success());
        }
        let profile = dir.path().join("profile");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {bin} --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions --remote-debugging-pipe --user-data-dir='{}' --window-size=1280,1000 about:blank 3<'{}' 4>'{}'",
                profile.display(),
                inp.display(),
                out.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let to = std::fs::OpenOptions::new().write(true).open(&inp).unwrap();
        let from = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
        let mut c = Chromium {
            child,
            to,
            from,
            next: 0,
            session: None,
            _dir: dir,
        };
        let target = c.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let id = target["targetId"].as_str().unwrap().to_owned();
        let attached = c.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": id, "flatten": true}),
        );
        c.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        c.call("Page.enable", serde_json::json!({}));
        c
    }

    /// Sends a command (to the page once attached) and returns its result.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        match self.try_call(method, params) {
            Ok(result) => result,
            Err(error) => panic!("{method}: {error}"),
        }
    }

    /// Sends a command and returns its result, or the error the browser answered.
    pub fn try_call(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        use std::io::BufRead;
        self.next += 1;
        let mut msg = serde_json::json!({"id": self.next, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = serde_json::Value::String(s.clone());
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed its pipe");
            buf.pop();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            if v["id"].as_u64() == Some(self.next) {
                return match v.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Sends a command to the browser itself (not the page).
    pub fn call_browser(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let session = self.session.take();
        let r = self.call(method, params);
        self.session = session;
        r
    }

    /// Evaluates `js` in the page and returns its value.
    pub fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": js, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Navigates to `url` and waits until the page at `path` has loaded.
    pub fn open(&mut self, url: &str, path: &str) -> String {
        self.call("Page.navigate", serde_json::json!({"url": url}));
        self.wait_for(path)
    }

    /// Runs `js` (which submits a form or follows a link) and waits for the *next* page, at
    /// `path`, to load: the page it leaves is marked first, so it is never taken for the new
    /// one. Returns the new page's HTML.
    pub fn submit(&mut self, js: &str, path: &str) -> String {
        self.eval("window.__swLeaving = true");
        self.eval(js);
        self.wait_for(path)
    }

    /// Waits (at most 30 s) for a loaded page whose path is `path` (not one [`Chromium::submit`]
    /// is leaving); returns its HTML.
    pub fn wait_for(&mut self, path: &str) -> String {
        for _ in 0..300 {
            // Asked while the page navigates, the browser may answer that the page it was
            // evaluating in is gone ("Inspected target navigated or closed"): not loaded yet.
            let state = self
                .try_call(
                    "Runtime.evaluate",
                    serde_json::json!({
                        "expression": "location.pathname + '|' + document.readyState + (window.__swLeaving ? '|old' : '')",
                        "returnByValue": true
                    }),
                )
                .map(|r| r["result"]["value"].clone())
                .unwrap_or_default();
            if state.as_str() == Some(&format!("{path}|complete")) {
                return self
                    .eval("document.documentElement.outerHTML")
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the page {path} did not load");
    }

    pub fn screenshot(&mut self, file: &Path) -> Vec<u8> {
        let r = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        let png = data_encoding::BASE64
            .decode(r["data"].as_str().unwrap().as_bytes())
            .unwrap();
        std::fs::write(file, &png).unwrap();
        png
    }
}

/// The text of the QR code in a PNG screenshot.
pub fn read_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let samples = info.color_type.samples();
    let line = info.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = &buf[y * line + x * samples..];
        if samples >= 3 {
            ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8
        } else {
            p[0]
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the screenshot");
    grids[0].decode().unwrap().1
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
