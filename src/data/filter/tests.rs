use super::*;

/// (regex, path, what Python's `re.match(regex, path)` says), computed with CPython 3.11.
const PYTHON_MATCH: &[(&str, &str, bool)] = &[
    // `re.match`: anchored at the start, not at the end.
    (r".*\.txt", "a.txt", true),
    (r".*\.txt", "sub/a.txt", true),
    (r".*\.txt", "a.txt.bak", true),
    (r".*\.txt", "a.txtx", true),
    (r".*\.txt", "atxt", false),
    (r".*\.txt$", "a.txt", true),
    (r".*\.txt$", "a.txt.bak", false),
    (r".*\.txt$", "sub/b.txt", true),
    (r"ckpt", "ckpt/1.pt", true),
    (r"ckpt", "model/ckpt/1.pt", false),
    (r"ckpt", "ckpt", true),
    (r"sub/", "sub/a", true),
    (r"sub/", "sub", false),
    (r"sub/", "other/sub/a", false),
    (r"a|b", "b/x", true),
    (r"a|b", "xa", false),
    (r"(?i)IMG_\d+\.(jpg|png)$", "img_001.PNG", true),
    (r"(?i)IMG_\d+\.(jpg|png)$", "x/img_1.jpg", false),
    (r"(?i)IMG_\d+\.(jpg|png)$", "img_.jpg", false),
    (r"[^/]*$", "top.txt", true),
    (r"[^/]*$", "dir/nested.txt", false),
    // Python syntax that regex-lite spells differently or refuses.
    (r"a{b", "a{b", true),
    (r"a{b", "ab", false),
    (r"x{,2}y", "xxy", true),
    (r"x{,2}y", "y", true),
    (r"x{,2}y", "xxxy", false),
    (r"x{2}", "xx", true),
    (r"x{2}", "x", false),
    (r"[[a]", "[", true),
    (r"[[a]", "a", true),
    (r"[[a]", "b", false),
    (r"[a&&b]", "&", true),
    (r"[a&&b]", "a", true),
    (r"[a&&b]", "b", true),
    (r"\<a\>", "<a>", true),
    (r"\<a\>", "a", false),
    (r"a\Z", "a", true),
    (r"a\Z", "ab", false),
    (r"\101", "A", true),
    (r"\101", "a", false),
    (r"\0", "\0", true),
    (r"\0", "0", false),
    (r"a(?#comment)b", "ab", true),
    (r"}", "}", true),
    (r"[]a]", "]", true),
    (r"[]a]", "a", true),
    (r"[]a]", "b", false),
    (r"\é", "é", true),
    (r"(?P<n>ab)c", "abc", true),
    (r"\d", "1", true),
    (r"\d", "a", false),
    (r"", "anything", true),
    (r"", "", true),
    (r"(?x) a b # comment", "ab", true),
    (r"(?x) a b # comment", "a b", false),
    (r"(?x)a\ b", "a b", true),
    (r"(?x)a\ b", "ab", false),
];

#[test]
fn matches_like_python_re_match() {
    for &(pattern, path, expected) in PYTHON_MATCH {
        let filter = Filter::new(pattern).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            filter.matches(path),
            expected,
            "re.match({pattern:?}, {path:?})"
        );
    }
    assert!(Filter::all().matches("any/thing"));
}

#[test]
fn refuses_what_regex_lite_cannot_do_naming_the_regex() {
    // Python compiles the first four; the last three are errors there too.
    for pattern in [
        r"(?=a)",
        r"(?<!a)b",
        r"(a)\1",
        r"(?P<x>a)(?P=x)",
        "a\\",
        "(",
        "[a",
    ] {
        let e = Filter::new(pattern).expect_err(pattern);
        assert_eq!(e.pattern, pattern);
        assert!(e.to_string().contains(&format!("{pattern:?}")), "{e}");
    }
    let e = Filter::new(r"(?<=x)y").unwrap_err();
    assert!(e.reason.contains("look-around"), "{e}");
    let e = Filter::new(r"(a)\1").unwrap_err();
    assert!(e.reason.contains("backreference"), "{e}");
}

#[test]
fn object_paths_relative_to_the_url_as_os_path_relpath() {
    // (key, prefix, os.path.relpath(key, prefix)) from CPython.
    for (key, prefix, rel) in [
        ("wf/out/sub/a.txt", "wf/out/", "sub/a.txt"),
        ("wf/out/sub//a.txt", "wf/out", "sub/a.txt"),
        ("a/b", "", "a/b"),
        ("wf/out/./a", "wf/out/", "a"),
        ("wf/out/../x/a", "wf/out/", "../x/a"),
        ("wf/out", "wf/out", "."),
    ] {
        assert_eq!(object_rel_path(key, prefix), rel, "{key} under {prefix}");
    }
    // What a download's regex sees.
    let filter = Filter::new(r"sub/.*\.txt$").unwrap();
    assert!(filter.matches(&object_rel_path("wf/out/sub/a.txt", "wf/out")));
    assert!(!filter.matches(&object_rel_path("wf/out/other/sub/a.txt", "wf/out")));
}
