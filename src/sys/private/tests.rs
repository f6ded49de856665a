use super::*;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sidewire-private-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_private_folder_is_made_or_tightened_to_0700_and_links_or_shared_folders_are_refused() {
    let dir = scratch("dir");
    private_dir(&dir.join("new")).unwrap();
    assert_eq!(mode(&dir.join("new")), 0o700);
    fs::create_dir(dir.join("open")).unwrap();
    fs::set_permissions(dir.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
    private_dir(&dir.join("open")).unwrap();
    assert_eq!(mode(&dir.join("open")), 0o700);

    fs::create_dir(dir.join("shared")).unwrap();
    fs::set_permissions(dir.join("shared"), fs::Permissions::from_mode(0o1777)).unwrap();
    let err = private_dir(&dir.join("shared")).unwrap_err().to_string();
    assert!(err.contains("sticky"), "{err}");
    assert_eq!(mode(&dir.join("shared")), 0o1777, "left as it was");

    symlink(dir.join("open"), dir.join("link")).unwrap();
    let err = private_dir(&dir.join("link")).unwrap_err().to_string();
    assert!(err.contains("not a folder"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_private_file_is_0600_keeps_its_content_and_is_never_a_link() {
    let dir = scratch("file");
    private_file(&dir.join("a")).unwrap();
    assert_eq!(mode(&dir.join("a")), 0o600);
    fs::write(dir.join("b"), b"kept").unwrap();
    fs::set_permissions(dir.join("b"), fs::Permissions::from_mode(0o666)).unwrap();
    private_file(&dir.join("b")).unwrap();
    assert_eq!(
        (mode(&dir.join("b")), fs::read(dir.join("b")).unwrap()),
        (0o600, b"kept".to_vec())
    );

    fs::write(dir.join("target"), b"other").unwrap();
    fs::set_permissions(dir.join("target"), fs::Permissions::from_mode(0o644)).unwrap();
    symlink(dir.join("target"), dir.join("link")).unwrap();
    assert!(private_file(&dir.join("link")).is_err());
    assert_eq!(
        mode(&dir.join("target")),
        0o644,
        "the link's target is untouched"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_replaced_file_is_written_whole_0600_and_never_through_a_planted_name() {
    let dir = scratch("replace");
    let dest = dir.join("config.yaml");
    replace_file(&dest, b"one").unwrap();
    replace_file(&dest, b"two").unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"two");
    assert_eq!(mode(&dest), 0o600);
    // Only the destination is left: no temporary file behind.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("config.yaml")]);

    // A link planted at the destination is replaced, not written through.
    fs::write(dir.join("victim"), b"untouched").unwrap();
    fs::remove_file(&dest).unwrap();
    symlink(dir.join("victim"), &dest).unwrap();
    replace_file(&dest, b"three").unwrap();
    assert_eq!(fs::read(dir.join("victim")).unwrap(), b"untouched");
    assert!(fs::symlink_metadata(&dest).unwrap().is_file());
    fs::remove_dir_all(&dir).unwrap();
}
