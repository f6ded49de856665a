//! The rsync daemon's modules: `-rsyncPathAllowList` parsed strictly, and the
//! `rsyncd.conf` written from it. Pure text in, text out; the caller checks the paths
//! exist and writes the file.

use std::fmt::Write;

/// The module every task has: `{runLocation}/workspace`, writable.
pub const WORKSPACE_MODULE: &str = "osmo";
/// Most extra modules kept; entries past it are refused.
pub const MAX_MODULES: usize = 64;
const MAX_NAME: usize = 64;
const MAX_PATH: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub path: String,
    pub writable: bool,
}

/// Parses `name:path:writable,...` (writable `true`, `false` or empty for false; empty
/// entries are skipped). Returns the modules that are well formed, and one line per
/// entry refused, naming it and why: a bad entry costs only itself.
pub fn parse_allow_list(list: &str) -> (Vec<Module>, Vec<String>) {
    let mut modules: Vec<Module> = Vec::new();
    let mut refused = Vec::new();
    for entry in list.split(',').filter(|e| !e.is_empty()) {
        let shown = shorten(entry);
        if modules.len() == MAX_MODULES {
            refused.push(format!(
                "rsync module {shown:?} refused: more than {MAX_MODULES} modules"
            ));
            continue;
        }
        match parse_entry(entry, &modules) {
            Ok(module) => modules.push(module),
            Err(why) => refused.push(format!("rsync module {shown:?} refused: {why}")),
        }
    }
    (modules, refused)
}

fn parse_entry(entry: &str, earlier: &[Module]) -> Result<Module, String> {
    let parts: Vec<&str> = entry.split(':').collect();
    let [name, path, writable] = parts[..] else {
        return Err("not name:path:writable".into());
    };
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(name_ok) {
        return Err(format!(
            "the name must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-'"
        ));
    }
    // `global` is rsyncd.conf's section for defaults, not a module.
    if name == WORKSPACE_MODULE || name.eq_ignore_ascii_case("global") {
        return Err(format!("the name {name:?} is reserved"));
    }
    if earlier.iter().any(|m| m.name == name) {
        return Err(format!("a module named {name:?} is already listed"));
    }
    check_path(path)?;
    let writable = match writable {
        "true" => true,
        "false" | "" => false,
        other => return Err(format!("writable is {other:?}, not true or false")),
    };
    Ok(Module {
        name: name.to_owned(),
        path: path.to_owned(),
        writable,
    })
}

/// A path rsyncd.conf carries as it is: absolute, and nothing its parser would change
/// (it trims spaces, continues lines ending in `\` and expands `%VAR%`).
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || path.len() > MAX_PATH {
        return Err(format!(
            "the path must be absolute and at most {MAX_PATH} bytes"
        ));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '%' || c == '\\')
    {
        return Err("the path holds a control character, '%' or '\\'".into());
    }
    if path.trim() != path {
        return Err("the path starts or ends with a space".into());
    }
    Ok(())
}

/// The daemon's configuration: no chroot, the daemon's own user and group kept (as root
/// rsync would otherwise switch to `nobody`), each module read-only unless writable.
pub fn render(modules: &[Module], uid: u32, gid: u32) -> String {
    let mut text = String::from(
        "# The sidewire agent's rsync daemon; rewritten at every start.\n\
         use chroot = no\n\
         reverse lookup = no\n\
         log file = /dev/stderr\n\
         timeout = 600\n",
    );
    let _ = writeln!(text, "uid = {uid}\ngid = {gid}");
    for m in modules {
        let read_only = if m.writable { "no" } else { "yes" };
        let _ = write!(
            text,
            "\n[{}]\n    path = {}\n    read only = {read_only}\n",
            m.name, m.path
        );
    }
    text
}

/// An entry as shown in an error line: its first 200 bytes.
fn shorten(entry: &str) -> &str {
    let mut end = entry.len().min(200);
    while !entry.is_char_boundary(end) {
        end -= 1;
    }
    &entry[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, path: &str, writable: bool) -> Module {
        Module {
            name: name.into(),
            path: path.into(),
            writable,
        }
    }

    #[test]
    fn well_formed_entries_become_modules() {
        let (modules, refused) = parse_allow_list("data:/mnt/data:false,out:/o:true,,logs:/l:");
        assert_eq!(refused, Vec::<String>::new());
        assert_eq!(
            modules,
            [
                module("data", "/mnt/data", false),
                module("out", "/o", true),
                module("logs", "/l", false)
            ]
        );
        assert_eq!(parse_allow_list(""), (vec![], vec![]));
    }

    #[test]
    fn each_bad_entry_is_named_with_its_reason_and_the_rest_kept() {
        let list = "a:/x,b:/x:yes,:/x:true,osmo:/x:true,Global:/x:false,c:rel:true,\
                    d:/x%HOME%:true,e:/x :true,f]:/x:true,g:/x:true,g:/y:false,h:/a\\:false,i:/\n:true";
        let (modules, refused) = parse_allow_list(list);
        assert_eq!(modules, [module("g", "/x", true)]);
        let expect = [
            ("a:/x", "not name:path:writable"),
            ("b:/x:yes", "writable is \"yes\""),
            (":/x:true", "the name must be"),
            ("osmo:/x:true", "reserved"),
            ("Global:/x:false", "reserved"),
            ("c:rel:true", "absolute"),
            ("d:/x%HOME%:true", "'%'"),
            ("e:/x :true", "space"),
            ("f]:/x:true", "the name must be"),
            ("g:/y:false", "already listed"),
            ("h:/a\\:false", "or '\\'"),
            ("i:/\n:true", "control character"),
        ];
        assert_eq!(refused.len(), expect.len(), "{refused:#?}");
        for (line, (entry, why)) in refused.iter().zip(expect) {
            assert!(line.contains(&format!("{entry:?}")), "{line}");
            assert!(line.contains(why), "{line} lacks {why}");
        }
    }

    #[test]
    fn modules_past_the_cap_are_refused() {
        let list: Vec<String> = (0..=MAX_MODULES)
            .map(|i| format!("m{i}:/d:false"))
            .collect();
        let (modules, refused) = parse_allow_list(&list.join(","));
        assert_eq!(modules.len(), MAX_MODULES);
        assert_eq!(refused.len(), 1);
        assert!(refused[0].contains("more than 64 modules"));
    }

    #[test]
    fn the_config_marks_modules_read_only_unless_writable() {
        let text = render(
            &[
                module("osmo", "/run/workspace", true),
                module("d", "/data", false),
            ],
            1000,
            100,
        );
        assert!(text.contains("use chroot = no\n"));
        assert!(text.contains("uid = 1000\ngid = 100\n"));
        assert!(text.contains("\n[osmo]\n    path = /run/workspace\n    read only = no\n"));
        assert!(text.ends_with("\n[d]\n    path = /data\n    read only = yes\n"));
    }
}
