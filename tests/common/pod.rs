//! A pod of one task on this machine: sidewire started as `osmo_ctrl` and `osmo_exec`
//! (symlinks, upstream flags) around a shared socket folder, against a service port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::ServiceConfig;

pub struct Pod {
    pub dir: PathBuf,
    pub ctrl: Child,
    pub agent: Option<Child>,
}

/// A fresh folder with `osmo_ctrl` and `osmo_exec` links to the binary under test.
pub fn pod_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-pod-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("output")).expect("pod dir");
    for link in ["osmo_ctrl", "osmo_exec"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sidewire"), dir.join(link))
            .expect("symlink");
    }
    dir
}

impl Pod {
    /// Starts ctrl with the flags a real pod passes, plus `extra`.
    pub fn start_ctrl(dir: &Path, cfg: &ServiceConfig, port: u16, extra: &[&str]) -> Child {
        Pod::ctrl_command(dir, cfg, port, extra)
            .spawn()
            .expect("start osmo_ctrl")
    }

    /// The command [`start_ctrl`](Self::start_ctrl) runs (writing the token file it
    /// names), for a test that also sets the environment or captures stderr.
    pub fn ctrl_command(dir: &Path, cfg: &ServiceConfig, port: u16, extra: &[&str]) -> Command {
        std::fs::write(dir.join("refresh_token"), &cfg.refresh_token).expect("token file");
        let mut command = Command::new(dir.join("osmo_ctrl"));
        command
            .args(["-socketPath", &dir.join("ctrl.sock").display().to_string()])
            .args(["-host", "127.0.0.1", "-port", &port.to_string()])
            .args([
                "-workflow",
                &cfg.workflow,
                "-groupName",
                &cfg.group,
                "-logSource",
                &cfg.task,
            ])
            .args(["-retryId", &cfg.retry_id, "-tokenHeader", &cfg.token_header])
            .args([
                "-refreshToken",
                &dir.join("refresh_token").display().to_string(),
            ])
            .args(["-outputPath", &dir.join("output").display().to_string()])
            .args(extra)
            .env("SIDEWIRE_TERMINATION_LOG", dir.join("termination-log"))
            .stdout(Stdio::null());
        command
    }

    /// Starts the agent running `sh -c script`; its stdout is captured.
    pub fn start_agent(dir: &Path, script: &str) -> Child {
        let mut command = Command::new(dir.join("osmo_exec"));
        command
            .args(Pod::agent_args(dir, script))
            .current_dir(dir)
            .stdout(Stdio::piped());
        command.spawn().expect("start osmo_exec")
    }

    /// The flags [`start_agent`](Self::start_agent) passes to `osmo_exec`, for a test
    /// that starts the agent another way (its stderr captured, or in a new namespace).
    pub fn agent_args(dir: &Path, script: &str) -> Vec<String> {
        let socket = dir.join("ctrl.sock").display().to_string();
        let history = dir.join("history").display().to_string();
        [
            "-socketPath",
            &socket,
            "-unixTimeout",
            "1",
            "-historyFilePath",
            &history,
            "-commands",
            "sh",
            "-args",
            "-c",
            "-args",
            script,
        ]
        .map(String::from)
        .to_vec()
    }

    pub fn start(name: &str, cfg: &ServiceConfig, port: u16, script: &str, extra: &[&str]) -> Pod {
        let dir = pod_dir(name);
        let ctrl = Pod::start_ctrl(&dir, cfg, port, extra);
        let agent = Some(Pod::start_agent(&dir, script));
        Pod { dir, ctrl, agent }
    }

    pub fn termination_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("termination-log")).unwrap_or_default()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.ctrl.kill();
        let _ = self.ctrl.wait();
        if let Some(agent) = self.agent.as_mut() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits for a child to exit; its code, or None on timeout.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A field of a service message, whatever the case of its key (the service lower-cases keys).
pub fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

pub fn io_type(m: &Map<String, Value>) -> String {
    field(m, "IOType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn text(m: &Map<String, Value>) -> String {
    field(m, "Text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The texts of all messages of one IOType, in arrival order.
pub fn texts_of(messages: &[Map<String, Value>], io: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| io_type(m) == io)
        .map(text)
        .collect()
}
