use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn periods_count_from_the_end_of_each_upload() {
    let t0 = Instant::now();
    let mut s = Schedule::new(vec![secs(10)]);
    assert_eq!(s.next(t0), None, "nothing before the command starts");
    s.arm(t0);
    assert_eq!(s.next_deadline(), Some(t0 + secs(10)));
    assert_eq!(s.next(t0 + secs(9)), None);
    assert_eq!(s.next(t0 + secs(10)), Some(0));
    // While it runs there is no period: it cannot overlap itself.
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.next(t0 + secs(25)), None);
    s.finished(t0 + secs(25));
    assert_eq!(s.next_deadline(), Some(t0 + secs(35)));
    s.arm(t0 + secs(30));
    assert_eq!(
        s.next_deadline(),
        Some(t0 + secs(35)),
        "arming twice changes nothing"
    );
}

#[test]
fn a_checkpoint_due_while_another_uploads_waits_and_runs_once() {
    let t0 = Instant::now();
    let mut s = Schedule::new(vec![secs(5), secs(1)]);
    s.arm(t0);
    assert_eq!(s.next(t0 + secs(1)), Some(1));
    // 0 comes due while 1 uploads; many ticks later it is still queued once.
    for t in 5..20 {
        assert_eq!(s.next(t0 + secs(t)), None);
    }
    s.finished(t0 + secs(20));
    assert_eq!(s.next(t0 + secs(20)), Some(0));
    s.finished(t0 + secs(21));
    // 1's period began when its upload ended (20 s): due at 21 s.
    assert_eq!(s.next(t0 + secs(21)), Some(1));
    s.finished(t0 + secs(21));
    assert!(s.is_idle());
}

#[test]
fn the_final_round_runs_every_checkpoint_once_including_the_running_one() {
    let t0 = Instant::now();
    let mut s = Schedule::new(vec![secs(1), secs(1), secs(100)]);
    s.arm(t0);
    assert_eq!(s.next(t0 + secs(1)), Some(0));
    s.begin_final();
    assert!(!s.is_idle());
    assert_eq!(s.next_deadline(), None, "no period after the end");
    assert_eq!(s.next(t0 + secs(2)), None, "0 still uploads");
    s.finished(t0 + secs(2));
    let mut order = Vec::new();
    while let Some(i) = s.next(t0 + secs(50)) {
        order.push(i);
        s.finished(t0 + secs(50));
    }
    assert_eq!(order, [0, 1, 2]);
    assert!(s.is_idle());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn abandoning_drops_the_queue_but_waits_for_the_running_upload() {
    let t0 = Instant::now();
    let mut s = Schedule::new(vec![secs(1), secs(1)]);
    s.begin_final();
    assert_eq!(s.next(t0), Some(0));
    s.abandon();
    assert!(!s.is_idle());
    s.finished(t0);
    assert!(s.is_idle());
    assert_eq!(s.next(t0), None);
}

fn spec(path: &str, url: &str) -> CheckpointSpec {
    CheckpointSpec {
        path: path.into(),
        url: url.into(),
        frequency: secs(1),
        regex: ".*".into(),
    }
}

#[test]
fn the_path_decides_the_layout_as_upstream_uploads_it() {
    let dir = std::env::temp_dir().join(format!("sidewire-ckpt-layout-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("ckpt")).unwrap();
    std::fs::write(dir.join("model.pt"), b"x").unwrap();
    let d = dir.display();

    let folder = work_for(&spec(&format!("{d}/ckpt/"), "s3://b/run/")).unwrap();
    assert_eq!(
        (folder.local, folder.url, folder.only),
        (dir.join("ckpt/"), "s3://b/run/ckpt".into(), None)
    );

    let contents = work_for(&spec(&format!("{d}/ckpt/*"), "s3://b/run")).unwrap();
    assert_eq!(
        (contents.local, contents.url, contents.only),
        (dir.join("ckpt"), "s3://b/run".into(), None)
    );

    let file = work_for(&spec(&format!("{d}/model.pt"), "s3://b/run")).unwrap();
    assert_eq!(
        (file.local, file.url, file.only),
        (dir.clone(), "s3://b/run".into(), Some("model.pt".into()))
    );
    assert_eq!(file.direction, Direction::Upload);
    assert_eq!(file.credentials, CredentialSource::User);

    let missing = work_for(&spec(&format!("{d}/absent"), "s3://b")).unwrap_err();
    assert!(missing.contains("absent"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn journal_and_credentials_defaults() {
    let sock = std::env::temp_dir().join("sidewire.sock");
    assert_eq!(
        journal_path("", &sock),
        Some(std::env::temp_dir().join("sidewire-checkpoints.db"))
    );
    assert_eq!(journal_path("none", &sock), None);
    assert_eq!(journal_path("/nonexistent-folder/j.db", &sock), None);
    assert_eq!(
        user_config_path(Path::new("/a/c.yaml")),
        PathBuf::from("/a/c.yaml")
    );
}
