use super::*;

const MIB: u64 = 1 << 20;

#[test]
fn part_size_is_at_least_8_mib_and_fits_in_10000_parts() {
    assert_eq!(part_size(0), MIN_PART);
    assert_eq!(part_size(300 * MIB), MIN_PART);
    assert_eq!(part_size(MIN_PART * MAX_PARTS), MIN_PART);
    assert_eq!(part_size(MIN_PART * MAX_PARTS + 1), 9 * MIB);
    for size in [1, 64 * MIB + 1, 100 << 30, 5 << 40] {
        let p = part_size(size);
        assert!(p >= MIN_PART && p.is_multiple_of(MIB));
        assert!(size.div_ceil(p) <= MAX_PARTS, "{size}");
    }
}

#[test]
fn pieces_cover_the_file_once_numbered_from_one() {
    let got: Vec<_> = pieces(20 * MIB + 1, 8 * MIB).collect();
    assert_eq!(
        got,
        vec![
            (1, 0, 8 * MIB),
            (2, 8 * MIB, 8 * MIB),
            (3, 16 * MIB, 4 * MIB + 1)
        ]
    );
    assert_eq!(pieces(0, 8 * MIB).count(), 0);
    assert_eq!(pieces(8 * MIB, 8 * MIB).count(), 1);
}

#[test]
fn missing_ranges_are_the_gaps_between_finished_ones() {
    assert_eq!(missing_ranges(10, &[], 4), vec![(0, 4), (4, 4), (8, 2)]);
    assert_eq!(missing_ranges(10, &[(0, 10)], 4), vec![]);
    assert_eq!(missing_ranges(10, &[(4, 4)], 4), vec![(0, 4), (8, 2)]);
    // Overlapping, unordered and out-of-bounds records are merged and clipped.
    assert_eq!(
        missing_ranges(20, &[(12, 100), (0, 3), (2, 3)], 8),
        vec![(5, 7)]
    );
    assert_eq!(missing_ranges(0, &[], 8), vec![]);
}

#[test]
fn keys_that_leave_the_folder_are_refused() {
    assert_eq!(
        safe_relative_path("a/b/c.txt"),
        Ok(PathBuf::from("a/b/c.txt"))
    );
    assert_eq!(safe_relative_path("a//./b"), Ok(PathBuf::from("a/b")));
    assert_eq!(safe_relative_path("../escape"), Err(KeyProblem::ParentDir));
    assert_eq!(safe_relative_path("a/../../b"), Err(KeyProblem::ParentDir));
    assert_eq!(safe_relative_path("a/.."), Err(KeyProblem::ParentDir));
    assert_eq!(safe_relative_path("/abs"), Err(KeyProblem::Absolute));
    assert_eq!(safe_relative_path("nul\0x"), Err(KeyProblem::Nul));
    assert_eq!(safe_relative_path("./"), Err(KeyProblem::Empty));
    assert_eq!(safe_relative_path(""), Err(KeyProblem::Empty));
    assert_eq!(
        safe_relative_path("a/.b.0123456789abcdef.sidewire-part"),
        Err(KeyProblem::TemporaryName)
    );
    assert_eq!(
        safe_relative_path(".x.sidewire-part"),
        Ok(PathBuf::from(".x.sidewire-part"))
    );
}

#[test]
fn keys_below_a_prefix() {
    assert_eq!(key_below_prefix("data/a/b", "data"), Some("a/b"));
    assert_eq!(key_below_prefix("data/a/b", "data/"), Some("a/b"));
    assert_eq!(key_below_prefix("data2/a", "data"), None);
    assert_eq!(
        key_below_prefix("data/one.bin", "data/one.bin"),
        Some("one.bin")
    );
    assert_eq!(key_below_prefix("x", ""), Some("x"));
    assert_eq!(upload_key("out/", "a/b"), "out/a/b");
    assert_eq!(upload_key("", "a"), "a");
}

#[test]
fn download_ranges_are_at_least_32_mib() {
    assert_eq!(range_size(1), 32 * MIB);
    assert_eq!(range_size(1 << 40), part_size(1 << 40).max(32 * MIB));
}
