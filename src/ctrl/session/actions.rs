//! Actions that open sessions: which kind, to which port, and refusals (the limit, an
//! rsync daemon that is not running).

use std::time::Instant;

use super::router_link::{parse_router_address, LinkSpec};
use super::{conn, control, exec, udp, Session, Sessions, RSYNC_PORT};
use crate::net::NetCtx;
use crate::proto::osmo::{Action, Session as ActionSession};

impl Sessions {
    /// Opens the session an action asks for. Returns false for actions that are not
    /// sessions.
    pub fn start(
        &mut self,
        action: &Action,
        auth: Option<(String, String)>,
        ctx: &mut NetCtx,
        now: Instant,
    ) -> bool {
        let forward = |port, action, telemetry| control::Forward {
            port,
            action,
            telemetry,
            limits: None,
        };
        let (kind, session, what) = match action {
            Action::Exec {
                session,
                entry_command,
            } => ("exec", session, Start::Exec(entry_command.clone())),
            Action::PortForward {
                session,
                task_port,
                use_udp: true,
                ..
            } => ("portforward", session, Start::Udp(*task_port)),
            Action::PortForward {
                session,
                task_port,
                enable_telemetry,
                ..
            } => (
                "portforward",
                session,
                Start::Control(forward(*task_port, "PORTFORWARD", *enable_telemetry)),
            ),
            Action::WebServer { session, task_port } => (
                "webserver",
                session,
                Start::Control(forward(*task_port, "WEBSERVER", false)),
            ),
            Action::Rsync(session) => {
                let mut f = forward(self.rsync_port.unwrap_or(RSYNC_PORT), "RSYNC", true);
                f.limits = Some(self.rsync_limits);
                ("rsync", session, Start::Control(f))
            }
            _ => return false,
        };
        let spec = match self.link_spec(kind, session, auth) {
            Ok(spec) => spec,
            Err(why) => {
                self.log(format!("Cannot open the {kind} session: {why}"));
                return true;
            }
        };
        let refusal = if self.by_id.len() >= self.cfg.max_sessions {
            Some(format!(
                "too many sessions: {} are open (-maxSessions)",
                self.by_id.len()
            ))
        } else if kind == "rsync" && self.rsync_port.is_none() {
            Some("the task's rsync daemon is not running".to_owned())
        } else {
            None
        };
        if let Some(why) = refusal {
            self.log(format!("Refused a new {kind} session: {why}"));
            // Refusals are short-lived and bounded too: past twice the limit the router
            // link is not even dialled.
            if self.by_id.len() < self.cfg.max_sessions.saturating_mul(2) {
                self.insert(ctx, |ctx, token| {
                    Session::Conn(Box::new(conn::Conn::refused(ctx, spec, why, token, now)))
                });
            }
            return true;
        }
        let cfg = self.cfg.clone();
        self.insert(ctx, move |ctx, token| match what {
            Start::Exec(command) => Session::Exec(Box::new(exec::Exec::start(
                ctx, spec, command, &cfg, token, now,
            ))),
            Start::Udp(port) => Session::Udp(Box::new(udp::Udp::start(
                ctx,
                spec,
                port,
                cfg.udp_idle_timeout,
                token,
                now,
            ))),
            Start::Control(forward) => Session::Control(Box::new(control::Control::start(
                ctx, spec, forward, token, now,
            ))),
        });
        true
    }

    fn link_spec(
        &self,
        kind: &'static str,
        session: &ActionSession,
        auth: Option<(String, String)>,
    ) -> Result<LinkSpec, String> {
        Ok(LinkSpec {
            address: parse_router_address(&session.router_address)?,
            kind,
            workflow: self.cfg.workflow.clone(),
            key: session.key.clone(),
            cookie: session.cookie.clone(),
            auth,
            max_message: 1 << 20,
            max_unsent: 8 << 20,
        })
    }
}

enum Start {
    Exec(String),
    Udp(u16),
    Control(control::Forward),
}
