//! The sidecar (`osmo_ctrl`): links the agent in the user container to the OSMO service.

pub mod agent_link;
pub mod data;
pub mod exit;
pub mod lifecycle;
pub mod log_queue;
pub mod resume;
pub mod service;
pub mod session;
pub mod token;
pub mod uplink;

use std::time::Instant;

use mio::Poll;

use crate::cli::ctrl::CtrlArgs;
use crate::net::{Endpoint, NetCtx};
use exit::{ExitCode, Failure};
use lifecycle::{Ctrl, Setup, SERVICE};
use service::{ServiceConfig, ServiceLink};
use uplink::Uplink;

/// Runs ctrl as the pod's sidecar; returns the process exit code.
pub fn main(args: CtrlArgs) -> i32 {
    crate::sys::fd::raise_open_file_limit();
    let cfg = ServiceConfig {
        endpoint: Endpoint {
            host: args.host.clone(),
            port: args.port,
            tls: args.scheme == "wss",
        },
        target: args.service_target(),
        refresh_endpoint: Endpoint {
            host: args.host.clone(),
            port: args.port,
            tls: args.refresh_scheme == "https",
        },
        refresh_target: args.refresh_target(),
        token_header: args.token_header.clone(),
        refresh_token_path: args.refresh_token.clone(),
        timeout: args.timeout,
        source: args.log_source.clone(),
    };
    let setup = Setup {
        source: args.log_source.clone(),
        socket_path: args.socket_path.clone(),
        barrier: Some(args.barrier.clone()).filter(|b| !b.is_empty()),
        output_path: args.output_path.clone(),
        data: data::DataConfig {
            input_path: args.input_path.clone(),
            user_config: args.user_config.clone(),
            service_config: args.service_config.clone(),
            journal: journal_path(&args.journal),
            new_task: false,
            data_timeout: args.data_timeout,
            payload_signing: args.payload_signing,
            concurrency: match args.data_concurrency {
                0 => crate::data::engine::Settings::default_concurrency(),
                n => n,
            },
            live_progress: false,
            upload_while_running: args.upload_while_running,
            retry_id: args.retry_id.clone(),
            group_name: args.group_name.clone(),
        },
        inputs: args.inputs.clone(),
        outputs: args.outputs.clone(),
        logs_period: args.logs_period,
        logs_buffer_size: args.logs_buffer_size,
        logs_buffer_bytes: args.logs_buffer_bytes,
        logs_spill_bytes: args.logs_spill_bytes,
        unix_timeout: args.unix_timeout,
        agent_child: None,
        termination_log: true,
        drain_timeout: args.drain_timeout,
        sessions: session::SessionConfig {
            workflow: args.workflow.clone(),
            retry_id: args.retry_id.clone(),
            group_name: args.group_name.clone(),
            task_name: args.log_source.clone(),
            max_sessions: args.max_sessions,
            exec_timeout: args.exec_timeout,
            idle_timeout: args.session_idle_timeout,
            udp_idle_timeout: args.udp_idle_timeout,
        },
    };
    run(setup, |now| {
        Uplink::Service(Box::new(ServiceLink::new(cfg, SERVICE, now)))
    })
}

/// The journal to use: none when the flag is empty, or when its folder cannot be made
/// (a sidecar without the shared volume still runs, without resume).
fn journal_path(flag: &std::path::Path) -> Option<std::path::PathBuf> {
    if flag.as_os_str().is_empty() {
        return None;
    }
    let folder = flag.parent().filter(|p| !p.as_os_str().is_empty())?;
    // Only the journal's own folder is made (0700: the data volume is shared with the user
    // container): the volume under it must already be there.
    match crate::sys::private::private_dir(folder) {
        Ok(()) => Some(flag.to_path_buf()),
        Err(e) => {
            crate::note_error!(
                "ctrl: no transfer journal ({e}); transfers will not resume after a restart"
            );
            None
        }
    }
}

/// Runs the lifecycle with the uplink `make_uplink` builds; shared with `sidewire run`.
pub fn run(setup: Setup, make_uplink: impl FnOnce(Instant) -> Uplink) -> i32 {
    let termination_log = setup.termination_log;
    let fail = |failure: Failure| {
        crate::note_error!("ctrl: {}", failure.message);
        if termination_log {
            crate::sys::termlog::write_code(failure.code.code());
        }
        failure.code.code()
    };
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => return fail(Failure::new(ExitCode::Other, format!("epoll: {e}"))),
    };
    let net = match NetCtx::new() {
        Ok(n) => n,
        Err(e) => return fail(Failure::new(ExitCode::Other, e)),
    };
    let now = Instant::now();
    let validated = data::validate(&setup.inputs, &setup.outputs);
    let mut ctrl = match Ctrl::new(setup, make_uplink(now), &poll, net, now) {
        Ok(c) => c,
        Err(failure) => return fail(failure),
    };
    if let Err(failure) = validated {
        ctrl.fail(failure, now);
    }
    match crate::reactor::run(&mut poll, &mut ctrl) {
        Ok(code) => code,
        Err(e) => fail(Failure::new(ExitCode::Other, format!("event loop: {e}"))),
    }
}
