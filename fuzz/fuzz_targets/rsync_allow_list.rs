#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::agent::session::rsyncd::{parse_allow_list, render, MAX_MODULES, WORKSPACE_MODULE};

fuzz_target!(|data: &[u8]| {
    let Ok(list) = std::str::from_utf8(data) else {
        return;
    };
    let (modules, refused) = parse_allow_list(list);
    // Every non-empty entry is either a module or a refusal line naming why.
    let entries = list.split(',').filter(|e| !e.is_empty()).count();
    assert_eq!(modules.len() + refused.len(), entries);
    assert!(modules.len() <= MAX_MODULES);
    assert!(refused.iter().all(|line| line.contains(" refused: ")));
    for (i, m) in modules.iter().enumerate() {
        assert!(m.name != WORKSPACE_MODULE && m.path.starts_with('/'));
        assert!(modules[..i].iter().all(|earlier| earlier.name != m.name));
    }
    // Nothing in a module escapes its lines of the config: a fixed head, then four lines
    // (a blank, the section, its path, read only) per module.
    let text = render(&modules, 0, 0);
    assert_eq!(text.lines().count(), 7 + 4 * modules.len(), "{text}");
    let sections: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(sections.len(), modules.len());
    for (section, m) in sections.iter().zip(&modules) {
        assert_eq!(*section, format!("[{}]", m.name));
    }
});
