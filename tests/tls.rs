//! A task over TLS (`-scheme wss -refreshScheme https`) against a service whose
//! certificate comes from a private CA: trusted through `SSL_CERT_FILE`, the token
//! refresh and the log WebSocket both run over TLS and the task ends cleanly; without it
//! the certificate is refused and ctrl ends with 21 before any upgrade.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use common::pod::{pod_dir, texts_of, wait_exit, Pod};
use common::tls_service::TlsFront;
use common::{OsmoService, ServiceConfig};

const LONG: Duration = Duration::from_secs(15);
const TLS_FLAGS: [&str; 4] = ["-scheme", "wss", "-refreshScheme", "https"];

/// Reads the child's stderr to the end on a thread, so ctrl never blocks on the pipe.
fn collect_stderr(child: &mut Child) -> JoinHandle<String> {
    let mut pipe = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs a task through the TLS front, dialling it as `host`, trusting the private CA.
fn task_over_tls(name: &str, host: &str) {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let front = TlsFront::start(service.port());
    let dir = pod_dir(name);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, front.ca_pem()).expect("write the CA bundle");
    let mut extra = TLS_FLAGS.to_vec();
    extra.extend(["-host", host]);
    let mut ctrl = Pod::ctrl_command(&dir, &cfg, front.port(), &extra)
        .env("SSL_CERT_FILE", &ca)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start osmo_ctrl");
    let stderr = collect_stderr(&mut ctrl);
    let agent = Pod::start_agent(&dir, "echo one; echo two >&2; echo three");
    let mut pod = Pod {
        dir,
        ctrl,
        agent: Some(agent),
    };

    let code = wait_exit(&mut pod.ctrl, LONG);
    let stderr = stderr.join().unwrap_or_default();
    assert_eq!(code, Some(0), "ctrl's exit code; its stderr:\n{stderr}");
    assert_eq!(pod.termination_log(), r#"{"code":0}"#);
    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(wait_exit(&mut agent, LONG), Some(0));

    let messages = service.messages();
    assert_eq!(texts_of(&messages, "STDOUT"), ["one", "three"]);
    assert_eq!(texts_of(&messages, "STDERR"), ["two"]);
    assert_eq!(texts_of(&messages, "LOG_DONE").len(), 1);
    assert_eq!(service.violations(), Vec::<String>::new());
    assert!(service.refresh_calls() >= 1, "no token refresh arrived");
    assert!(service.connections() >= 1, "no WebSocket arrived");
    // ctrl knows only the front's port, so both reached the service through TLS.
    assert!(
        front.handshakes() >= 2,
        "one TLS handshake for the refresh, one for the WebSocket; got {}",
        front.handshakes()
    );
    assert_eq!(front.wait_failures(Duration::ZERO), Vec::<String>::new());
}

#[test]
fn a_task_runs_over_tls_to_an_ip_address_trusting_ssl_cert_file() {
    task_over_tls("tls-ip", "127.0.0.1");
}

#[test]
fn a_task_runs_over_tls_to_a_host_name_trusting_ssl_cert_file() {
    task_over_tls("tls-name", "localhost");
}

#[test]
fn without_ssl_cert_file_the_private_ca_is_refused_and_ctrl_ends_with_21() {
    let cfg = ServiceConfig::default();
    let service = OsmoService::start(cfg.clone());
    let front = TlsFront::start(service.port());
    let dir = pod_dir("tls-untrusted");
    let mut extra = TLS_FLAGS.to_vec();
    extra.extend(["-timeout", "0"]);
    let mut ctrl = Pod::ctrl_command(&dir, &cfg, front.port(), &extra)
        .env_remove("SSL_CERT_FILE")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start osmo_ctrl");
    let stderr = collect_stderr(&mut ctrl);
    let agent = Pod::start_agent(&dir, "touch started");
    let mut pod = Pod {
        dir,
        ctrl,
        agent: Some(agent),
    };

    let code = wait_exit(&mut pod.ctrl, LONG);
    let stderr = stderr.join().unwrap_or_default();
    assert_eq!(code, Some(21), "ctrl's exit code; its stderr:\n{stderr}");
    assert_eq!(pod.termination_log(), r#"{"code":21}"#);
    assert!(
        stderr.contains("invalid peer certificate") && stderr.contains("UnknownIssuer"),
        "stderr does not name the certificate problem:\n{stderr}"
    );
    let mut agent = pod.agent.take().expect("agent");
    assert_eq!(
        wait_exit(&mut agent, LONG),
        Some(1),
        "the agent learns ctrl failed"
    );
    assert!(!pod.dir.join("started").exists());

    // The client refused the certificate with an alert, so no handshake completed and
    // nothing reached the service: no refresh, no upgrade.
    let failures = front.wait_failures(LONG);
    assert!(
        failures.iter().any(|f| f.contains("UnknownCA")),
        "the front saw no unknown-CA alert: {failures:?}"
    );
    assert_eq!(front.handshakes(), 0);
    assert_eq!(service.refresh_calls(), 0);
    assert_eq!(
        service.connections(),
        0,
        "the server saw a WebSocket upgrade"
    );
}
