//! The `sidewire` binary: one executable for every role, chosen by subcommand or by the
//! name it was started as (`osmo_ctrl`, `osmo_exec`, `osmo_init`).

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(sidewire::cli::dispatch(args));
}
