//! Throughput of the calls made per part and per range. Run by hand, in release:
//! `cargo test --release --lib data::journal::tests::bench -- --ignored --nocapture`.

use std::path::Path;
use std::time::Instant;

use super::super::*;
use super::TestDir;

const RECORDS: u32 = 20_000;

#[test]
#[ignore = "a measurement, not a check: prints records/s"]
fn record_throughput() {
    let disk = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    for (label, base) in [
        ("tmpfs /dev/shm", Path::new("/dev/shm")),
        ("disk", disk.as_path()),
    ] {
        if !base.is_dir() {
            println!("{label}: {} missing, skipped", base.display());
            continue;
        }
        let dir = TestDir::under(base, "bench");
        let j = Journal::open(&dir.journal_path()).unwrap();
        let t = j.transfer(Direction::Upload, "bench").unwrap();
        j.start_multipart(t, "big.bin", &super::upload(u64::from(RECORDS) << 20))
            .unwrap();
        let start = Instant::now();
        for n in 1..=RECORDS {
            j.record_part(
                t,
                "big.bin",
                n,
                "\"0123456789abcdef0123456789abcdef\"",
                1 << 20,
            )
            .unwrap();
        }
        let parts = f64::from(RECORDS) / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for n in 0..u64::from(RECORDS) {
            j.record_range(t, "big.bin", n << 20, 1 << 20).unwrap();
        }
        let ranges = f64::from(RECORDS) / start.elapsed().as_secs_f64();
        assert_eq!(j.parts(t, "big.bin").unwrap().len(), RECORDS as usize);
        println!(
            "{label} ({}): record_part {parts:.0}/s, record_range {ranges:.0}/s",
            base.display()
        );
    }
}
