//! Downloads write only their own bytes, and only inside the input folder: objects whose
//! temporary and final names meet, keys that name one path, links planted in the folder
//! at temporary or folder names, a store that answers another range than the one asked
//! for; for `s3://` and `file://` inputs alike. And a download cut short continues its own
//! temporary file when run again.

mod common;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "data_plane/support.rs"]
mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_s3::{Canned, FakeS3, Listed};
use common::fault_proxy::{Fault, FaultPlan, FaultProxy, Rule};
use s3_server::S3Server;
use support::*;

/// Files outside the input folder that planted links point at, and what they hold.
struct Outside {
    dir: PathBuf,
}

impl Outside {
    fn new(workdir: &Path) -> Outside {
        let dir = workdir.join("outside");
        fs::create_dir_all(dir.join("folder")).unwrap();
        for name in ["secret1", "secret2", "secret3"] {
            fs::write(dir.join(name), format!("{name} stays as it is")).unwrap();
        }
        Outside { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Nothing outside changed: the secrets hold their bytes, the folder is empty.
    fn assert_untouched(&self) {
        for name in ["secret1", "secret2", "secret3"] {
            assert_eq!(
                fs::read_to_string(self.dir.join(name)).unwrap(),
                format!("{name} stays as it is"),
                "{name} was written through a link"
            );
        }
        let written: Vec<_> = fs::read_dir(self.dir.join("folder")).unwrap().collect();
        assert!(written.is_empty(), "written outside: {written:?}");
    }
}

/// The objects of the issue's bucket whose names meet: `x`'s old temporary name is the
/// object `.x.sidewire-part`.
const OBJECTS: [(&str, &[u8]); 3] = [
    (
        ".x.sidewire-part",
        b"the object named like a temporary file",
    ),
    ("a/b", b"the object a/b"),
    ("x", b"the object x"),
];

/// Links at the temporary names downloads used to take, pointing outside.
fn plant_temp_links(folder: &Path, outside: &Outside) {
    fs::create_dir_all(folder.join("a")).unwrap();
    symlink(outside.file("secret1"), folder.join(".x.sidewire-part")).unwrap();
    symlink(
        outside.file("secret2"),
        folder.join("..x.sidewire-part.sidewire-part"),
    )
    .unwrap();
    symlink(outside.file("secret3"), folder.join("a/.b.sidewire-part")).unwrap();
}

/// Every object landed whole under its own name, and no temporary file is left.
fn assert_each_has_its_own_bytes(folder: &Path) {
    for (name, body) in OBJECTS {
        let path = folder.join(name);
        assert!(
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()),
            "{name} is not a regular file"
        );
        assert_eq!(fs::read(&path).unwrap(), body, "{name}");
    }
    let left: Vec<String> = tree(folder)
        .into_iter()
        .filter(|p| p.ends_with(".sidewire-part") && p.matches('.').count() > 2)
        .filter(|p| !p.ends_with(".x.sidewire-part.sidewire-part"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

fn fake_bucket(objects: &[(&str, &[u8])]) -> FakeS3 {
    let fake = FakeS3::start();
    let listed: Vec<Listed> = objects
        .iter()
        .map(|(key, body)| Listed {
            key,
            size: body.len() as u64,
            // Not an MD5: the bytes themselves are what the test checks.
            etag: "etag-1",
        })
        .collect();
    fake.route(
        "GET",
        "list-type=2",
        Canned::listing_of(&listed, false, None),
    );
    for (key, body) in objects {
        fake.route(
            "GET",
            &format!("/bucket/{key}"),
            Canned::object(*body, "etag-1"),
        );
    }
    fake
}

#[test]
fn s3_objects_whose_temporary_names_meet_each_get_their_own_bytes_through_planted_links() {
    let dir = temp_dir("dl-temp-names");
    let outside = Outside::new(&dir);
    let fake = fake_bucket(&OBJECTS);
    write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
    plant_temp_links(&dir.join("input/in"), &outside);
    let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    outside.assert_untouched();
    assert_each_has_its_own_bytes(&dir.join("input/in"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn s3_keys_that_name_one_path_are_refused_naming_both_in_either_order() {
    let dir = temp_dir("dl-same-path");
    for (first, second) in [("a//b", "a/b"), ("a/b", "a/./b"), ("c/./d", "c//d")] {
        let _ = fs::remove_dir_all(dir.join("input"));
        let fake = fake_bucket(&[(first, b"first"), (second, b"second")]);
        write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
        let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
        let text = describe(&out);
        assert_eq!(out.status.code(), Some(10), "{first} {second}: {text}");
        assert!(
            text.contains(&format!("{first:?}")) && text.contains(&format!("{second:?}")),
            "both keys are named: {text}"
        );
        // Whatever landed before the refusal holds the first object's bytes.
        for file in tree(&dir.join("input/in")) {
            assert_eq!(
                fs::read(dir.join("input/in").join(&file)).unwrap(),
                b"first"
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn s3_a_link_planted_at_a_folder_name_fails_the_download_and_nothing_lands_outside() {
    let dir = temp_dir("dl-folder-link");
    let outside = Outside::new(&dir);
    let fake = fake_bucket(&[("a/b", b"the object a/b"), ("a/c/d", b"deeper")]);
    write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
    fs::create_dir_all(dir.join("input/in")).unwrap();
    symlink(outside.file("folder"), dir.join("input/in/a")).unwrap();
    let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(describe(&out).contains("symlink"), "{}", describe(&out));
    outside.assert_untouched();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_206_answer_for_another_range_than_asked_is_a_failed_request() {
    let dir = temp_dir("dl-content-range");
    let body = b"0123456789";
    for (stated, code) in [
        ("bytes 1-10/11", 10),
        ("bytes 0-9/*", 0),
        ("bytes 0-9/10", 0),
    ] {
        let _ = fs::remove_dir_all(dir.join("input"));
        let _ = fs::remove_file(dir.join("journal.db"));
        let fake = FakeS3::start();
        write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
        let listed = Listed {
            key: "r",
            size: body.len() as u64,
            etag: "etag-1",
        };
        fake.route(
            "GET",
            "list-type=2",
            Canned::listing_of(&[listed], false, None),
        );
        let mut answer = Canned::object(&body[..], "etag-1").header("Content-Range", stated);
        answer.status = 206;
        fake.route("GET", "/bucket/r", answer);
        let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{stated}: {}",
            describe(&out)
        );
        let landed = fs::read(dir.join("input/in/r")).ok();
        if code == 0 {
            assert_eq!(landed.as_deref(), Some(&body[..]));
        } else {
            assert!(describe(&out).contains(stated), "{}", describe(&out));
            assert_eq!(landed, None, "{stated}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

/// `sidewire run -store=file://STORE -input=ds` in `workdir`.
fn run_from_folder(workdir: &Path, store: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sidewire"))
        .args([
            "run",
            &format!("-workdir={}", workdir.display()),
            &format!("-store=file://{}", store.display()),
            "-input=ds",
            "--",
            "true",
        ])
        .output()
        .unwrap()
}

#[test]
fn file_inputs_write_only_their_own_bytes_and_follow_no_planted_link() {
    let dir = temp_dir("dl-file-store");
    let outside = Outside::new(&dir);
    let store = dir.join("store");
    for (name, body) in OBJECTS {
        let path = store.join("ds").join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    let work = dir.join("work");
    plant_temp_links(&work.join("input/ds"), &outside);
    let out = run_from_folder(&work, &store);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    outside.assert_untouched();
    assert_each_has_its_own_bytes(&work.join("input/ds"));

    let work = dir.join("work-folder-link");
    fs::create_dir_all(work.join("input/ds")).unwrap();
    symlink(outside.file("folder"), work.join("input/ds/a")).unwrap();
    let out = run_from_folder(&work, &store);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(describe(&out).contains("symlink"), "{}", describe(&out));
    outside.assert_untouched();
    let _ = fs::remove_dir_all(&dir);
}

/// Kills `sidewire run` and its agent (its own process group).
fn kill_group(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// A download of one 96 MiB object whose first `sidewire run` is killed once three of its
/// four ranges are journaled, the fourth stalled.
struct CutShort {
    s3: S3Server,
    proxy: FaultProxy,
    dir: PathBuf,
    source: PathBuf,
    /// The temporary file the killed run left.
    temp: PathBuf,
}

fn cut_short(name: &str) -> CutShort {
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket("bucket");
    let size = 96 * MIB + 5; // four 32 MiB ranges, the last of 5 bytes
    let source = s3.object_path("bucket", "big.bin");
    write_pattern(&source, size, 21);
    let plan = FaultPlan::shared(3);
    // One range stalls; the other three finish and are journaled. The stall comes two
    // bytes in, so it holds whichever range is asked first, the 5-byte one included (at
    // a MiB in, that one slipped through, all four finished, and the kill could find the
    // whole file journaled).
    plan.lock().unwrap().push(
        Rule::next(1, Fault::StallBody(2, Duration::from_secs(300)))
            .method("GET")
            .target("big.bin"),
    );
    let proxy = FaultProxy::start(s3.port, plan.clone());
    let dir = temp_dir(name);
    write_credentials(&dir, "bucket", &proxy.endpoint(), SECRET);
    let mut first = Command::new(env!("CARGO_BIN_EXE_sidewire"));
    first
        .args([
            "run",
            &format!("-workdir={}", dir.display()),
            "-input=url:in,s3://bucket,",
            "--",
            "true",
        ])
        .process_group(0);
    let mut child = first.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.count("GET", "big.bin") < 3 {
        assert!(Instant::now() < deadline, "three ranges never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The three ranges are journaled (WAL mode: readable while ctrl writes).
    let journal = rusqlite::Connection::open(dir.join("journal.db")).unwrap();
    let journaled = || -> i64 {
        journal
            .query_row("SELECT count(*) FROM range", [], |r| r.get(0))
            .unwrap_or(0)
    };
    while journaled() < 3 {
        assert!(Instant::now() < deadline, "three ranges never journaled");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(&mut child);
    let temps: Vec<String> = tree(&dir.join("input/in"))
        .into_iter()
        .filter(|p| p.starts_with(".big.bin.") && p.ends_with(".sidewire-part"))
        .collect();
    assert_eq!(temps.len(), 1, "{:?}", tree(&dir.join("input")));
    plan.lock().unwrap().clear();
    let temp = dir.join("input/in").join(&temps[0]);
    CutShort {
        s3,
        proxy,
        dir,
        source,
        temp,
    }
}

#[test]
fn a_download_cut_short_continues_its_own_temporary_file() {
    let cut = cut_short("dl-resume");
    let before = cut.proxy.count("GET", "big.bin");
    let out = run(&cut.dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(same_content(&cut.source, &cut.dir.join("input/in/big.bin")));
    assert_eq!(
        cut.proxy.count("GET", "big.bin") - before,
        1,
        "only the stalled range is fetched again"
    );
    assert_eq!(tree(&cut.dir.join("input/in")), vec!["big.bin".to_string()]);
    drop(cut.s3);
    let _ = fs::remove_dir_all(&cut.dir);
}

#[test]
fn a_link_put_in_place_of_a_cut_short_temporary_file_is_not_written_through() {
    let cut = cut_short("dl-resume-link");
    let outside = Outside::new(&cut.dir);
    // Same length as the object, so only the kind of file tells it apart.
    let secret = outside.file("secret1");
    let len = fs::metadata(&cut.source).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&secret)
        .unwrap()
        .set_len(len)
        .unwrap();
    let secret_before = fs::read(&secret).unwrap();
    fs::remove_file(&cut.temp).unwrap();
    symlink(&secret, &cut.temp).unwrap();
    let out = run(&cut.dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        fs::read(&secret).unwrap() == secret_before,
        "written through the link"
    );
    assert!(same_content(&cut.source, &cut.dir.join("input/in/big.bin")));
    let left: Vec<String> = tree(&cut.dir.join("input/in"))
        .into_iter()
        .filter(|p| p.ends_with(".sidewire-part"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = fs::remove_dir_all(&cut.dir);
}

#[test]
fn listed_sizes_no_object_can_have_are_refused_not_summed_or_planned() {
    let dir = temp_dir("dl-huge-sizes");
    let fake = FakeS3::start();
    write_credentials(&dir, "bucket", &fake.endpoint(), SECRET);
    let huge = |key| Listed {
        key,
        size: 1 << 63,
        etag: "etag-1",
    };
    fake.route(
        "GET",
        "list-type=2",
        Canned::listing_of(&[huge("h1"), huge("h2")], false, None),
    );
    let out = run(&dir, &["url:in,s3://bucket,".into()], &[], &["true"]);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(
        describe(&out).contains("more than any object can hold"),
        "{}",
        describe(&out)
    );
    assert!(tree(&dir.join("input")).is_empty());
    let _ = fs::remove_dir_all(&dir);
}
