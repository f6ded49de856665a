#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::spec::{parse_checkpoint, parse_input, parse_output, InputSpec, OutputSpec};

/// Folders and KPI paths are joined to a base directory and must stay inside it.
fn stays_inside(path: &str) -> bool {
    !path.contains('\0') && path.split('/').all(|c| c != "..")
}

fn check_error(e: &impl std::fmt::Display, spec: &str) {
    let message = e.to_string();
    assert!(!message.is_empty());
    // The spec is quoted (cut to 200 bytes) so the user can find it.
    let mut end = spec.len().min(200);
    while !spec.is_char_boundary(end) {
        end -= 1;
    }
    assert!(
        message.contains(&format!("{:?}", &spec[..end])),
        "{message}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Each spec is rebuilt from its fields: parsing loses nothing.
    match parse_input(s) {
        Ok(spec) => {
            assert!(!spec.url().is_empty() && stays_inside(spec.folder()));
            let kind = match spec {
                InputSpec::Task { .. } => "task",
                InputSpec::Url { .. } => "url",
            };
            let rebuilt = format!("{kind}:{},{},{}", spec.folder(), spec.url(), spec.regex());
            assert_eq!(rebuilt, s);
            match &spec {
                InputSpec::Task { url, .. } => assert!(url.ends_with(spec.log_name())),
                InputSpec::Url { url, .. } => assert_eq!(spec.log_name(), url),
            }
        }
        Err(e) => check_error(&e, s),
    }
    match parse_output(s) {
        Ok(spec) => {
            assert!(!spec.url().is_empty());
            let rebuilt = match &spec {
                OutputSpec::Task { url } => format!("task:{url}"),
                OutputSpec::Url { url, regex } => format!("url:{url},{regex}"),
                OutputSpec::Kpi { url, path } => {
                    assert!(!path.is_empty() && stays_inside(path));
                    assert_eq!(spec.metric_url(), format!("{url}/{path}"));
                    assert_eq!(spec.log_name(), format!("KPI: {path}"));
                    format!("kpi:{url},{path}")
                }
            };
            assert_eq!(rebuilt, s);
        }
        Err(e) => check_error(&e, s),
    }
    match parse_checkpoint(s) {
        Ok(c) => {
            assert!(c.frequency.as_secs() > 0 && c.frequency.subsec_nanos() == 0);
            assert!(!c.path.is_empty() && !c.url.is_empty());
            assert!(!c.path.contains(';') && !c.url.contains(';'));
            // The canonical form of the frequency parses to the same spec.
            let canonical = format!("{};{};{};{}", c.path, c.url, c.frequency.as_secs(), c.regex);
            assert_eq!(parse_checkpoint(&canonical), Ok(c));
        }
        Err(e) => check_error(&e, s),
    }
});
