#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::cli::{ctrl::CtrlArgs, exec::ExecArgs, init::InitArgs, run::RunArgs};

// Arguments are separated by NUL bytes, as in /proc/PID/cmdline.
fuzz_target!(|data: &[u8]| {
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match CtrlArgs::parse(&args) {
        Ok(c) => {
            assert!(c.service_target().starts_with("/api/logger/workflow/"));
            assert!(c.refresh_target().is_ascii());
        }
        Err(e) => drop(e.to_string()),
    }
    match ExecArgs::parse(&args) {
        Ok(e) => assert!(!e.argv().is_empty()),
        Err(e) => drop(e.to_string()),
    }
    match RunArgs::parse(&args) {
        Ok(r) => assert!(!r.command.is_empty() && !r.store_url().is_empty()),
        Err(e) => drop(e.to_string()),
    }
    if let Err(e) = InitArgs::parse(&args) {
        drop(e.to_string());
    }
});
