use super::*;
use crate::version::VersionEdit;
use crate::version::tests::check_invariants;
use proptest::prelude::*;

fn opts() -> Options {
    Options {
        l0_compaction_trigger_files: 2,
        l0_stall_files: 3,
        l0_stop_files: 5,
        l1_target_size_bytes: 300,
        level_size_multiplier: 2,
        max_levels: 4,
        ..Options::default()
    }
}

fn meta(number: u64, level: usize, lo: u8, hi: u8, size_bytes: u64) -> FileMeta {
    FileMeta {
        number,
        level,
        smallest_key: vec![lo],
        largest_key: vec![hi],
        size_bytes,
        wal_offset: 0,
        created_at_ms: 0,
        max_revision: number,
    }
}

fn version_with(files: Vec<FileMeta>) -> Version {
    Version::new(4)
        .apply(&VersionEdit {
            add: files,
            next_file_number: Some(100),
            last_revision: Some(100),
            ..VersionEdit::default()
        })
        .unwrap()
}

fn numbers(task: &CompactionTask) -> Vec<(usize, Vec<u64>)> {
    task.inputs
        .iter()
        .map(|l| (l.level, l.files.iter().map(|f| f.number).collect()))
        .collect()
}

#[test]
fn nothing_to_do_on_a_balanced_tree() {
    let v = version_with(vec![meta(1, 0, 1, 5, 10), meta(2, 1, 1, 5, 100)]);
    assert_eq!(pick(&v, &opts()), None);
    assert_eq!(stall(&v, &opts()), StallDecision::Proceed);
}

#[test]
fn l0_at_trigger_takes_all_of_l0_and_the_overlapping_l1() {
    let v = version_with(vec![
        meta(10, 0, 5, 8, 10),
        meta(11, 0, 2, 3, 10),
        meta(1, 1, 0, 1, 10),
        meta(2, 1, 3, 4, 10),
        meta(3, 1, 8, 9, 10),
        meta(4, 1, 10, 12, 10),
        meta(5, 2, 11, 20, 10),
    ]);
    let task = pick(&v, &opts()).unwrap();
    assert_eq!(numbers(&task), vec![(0, vec![11, 10]), (1, vec![2, 3])]);
    assert_eq!(task.output_level, 1);
    assert!(
        task.bottommost,
        "L2's only file starts above the span 2..=9"
    );
    assert_eq!(task.removed_files().len(), 4);
}

#[test]
fn data_below_the_span_makes_a_task_not_bottommost() {
    let v = version_with(vec![
        meta(10, 0, 5, 8, 10),
        meta(11, 0, 2, 3, 10),
        meta(5, 3, 4, 4, 10),
    ]);
    let task = pick(&v, &opts()).unwrap();
    assert!(!task.bottommost);
}

#[test]
fn the_most_oversized_level_moves_its_oldest_file_down() {
    // L1: 400 / 300 = 1.33; L2: 1300 / 600 = 2.17, so L2 goes first.
    let v = version_with(vec![
        meta(7, 1, 0, 1, 200),
        meta(8, 1, 2, 3, 200),
        meta(4, 2, 0, 2, 650),
        meta(3, 2, 5, 6, 650),
        meta(1, 3, 4, 5, 10),
        meta(2, 3, 6, 7, 10),
    ]);
    let task = pick(&v, &opts()).unwrap();
    assert_eq!(numbers(&task), vec![(2, vec![3]), (3, vec![1, 2])]);
    assert_eq!(task.output_level, 3);
    assert!(task.bottommost);
}

#[test]
fn the_last_level_is_never_a_source() {
    let v = version_with(vec![meta(1, 3, 0, 9, 1 << 40)]);
    assert_eq!(pick(&v, &opts()), None);
}

#[test]
fn stalls_follow_the_l0_backlog() {
    let l0 = |n: u64| version_with((1..=n).map(|i| meta(i, 0, 0, 1, 1)).collect());
    assert_eq!(stall(&l0(2), &opts()), StallDecision::Proceed);
    assert_eq!(
        stall(&l0(3), &opts()),
        StallDecision::SlowDown {
            delay_ms: STALL_DELAY_MS
        }
    );
    assert_eq!(
        stall(&l0(4), &opts()),
        StallDecision::SlowDown {
            delay_ms: STALL_DELAY_MS
        }
    );
    assert_eq!(stall(&l0(5), &opts()), StallDecision::Stop);
}

/// Installs the result of `task`: its trivial move when it has one, else one output file
/// spanning its inputs (sizes summed).
fn install(v: &Version, task: &CompactionTask) -> Version {
    if let Some(moved) = task.trivial_move() {
        return v
            .apply(&VersionEdit {
                add: moved,
                remove: task.removed_files(),
                ..VersionEdit::default()
            })
            .unwrap();
    }
    let inputs: Vec<&Arc<FileMeta>> = task.input_files().collect();
    let number = v.next_file_number();
    let out = FileMeta {
        number,
        level: task.output_level,
        smallest_key: inputs.iter().map(|f| f.smallest_key.clone()).min().unwrap(),
        largest_key: inputs.iter().map(|f| f.largest_key.clone()).max().unwrap(),
        size_bytes: inputs.iter().map(|f| f.size_bytes).sum(),
        wal_offset: 0,
        created_at_ms: 0,
        max_revision: inputs.iter().map(|f| f.max_revision).max().unwrap(),
    };
    let with_number = v
        .apply(&VersionEdit {
            next_file_number: Some(number + 1),
            ..VersionEdit::default()
        })
        .unwrap();
    with_number
        .apply(&VersionEdit {
            add: vec![out],
            remove: task.removed_files(),
            ..VersionEdit::default()
        })
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Flushing random L0 files and running every picked task to completion keeps the version
    /// valid, always terminates, computes `bottommost` exactly, and leaves no stall behind.
    #[test]
    fn picked_tasks_always_install_and_drain(
        flushes in prop::collection::vec((0u8..50, 0u8..10, 1u64..200), 1..40)
    ) {
        let opts = opts();
        let mut v = Version::new(opts.max_levels);
        let mut compactions = 0;
        for (lo, len, size) in flushes {
            let number = v.next_file_number();
            let rev = v.last_revision() + 1;
            v = v.apply(&VersionEdit {
                add: vec![FileMeta { max_revision: rev, ..meta(number, 0, lo, lo.saturating_add(len), size) }],
                next_file_number: Some(number + 1),
                last_revision: Some(rev),
                ..VersionEdit::default()
            }).unwrap();
            while let Some(task) = pick(&v, &opts) {
                compactions += 1;
                prop_assert!(compactions < 10_000, "compaction does not terminate");
                let lo = task.input_files().map(|f| f.smallest_key.clone()).min().unwrap();
                let hi = task.input_files().map(|f| f.largest_key.clone()).max().unwrap();
                let span = KeyRange::new(Bound::Included(lo), Bound::Included(hi));
                let data_below = (task.output_level + 1..v.num_levels()).any(|l| !v.overlapping(l, &span).is_empty());
                prop_assert_eq!(task.bottommost, !data_below);
                prop_assert!(task.output_level < v.num_levels());
                v = install(&v, &task);
                check_invariants(&v);
            }
            prop_assert!(v.files(0).len() < opts.l0_compaction_trigger_files);
            prop_assert_eq!(stall(&v, &opts), StallDecision::Proceed);
        }
    }
}

#[test]
fn disjoint_inputs_over_an_empty_output_range_move_instead_of_merging() {
    let v = version_with(vec![
        meta(10, 0, 5, 8, 10),
        meta(11, 0, 2, 3, 10),
        meta(1, 1, 0, 1, 10),
    ]);
    let task = pick(&v, &opts()).unwrap();
    let moved = task
        .trivial_move()
        .expect("L0 files 2..=3 and 5..=8 miss L1's 0..=1");
    let placed: Vec<(u64, usize)> = moved.iter().map(|f| (f.number, f.level)).collect();
    assert_eq!(
        placed,
        vec![(11, 1), (10, 1)],
        "sorted by key, at the output level"
    );
    let after = v
        .apply(&VersionEdit {
            remove: task.removed_files(),
            add: moved,
            ..VersionEdit::default()
        })
        .unwrap();
    check_invariants(&after);
    assert!(after.files(0).is_empty());
    assert_eq!(after.files(1).len(), 3);
}

#[test]
fn overlapping_inputs_or_an_occupied_output_range_must_merge() {
    let overlapping_l0 = version_with(vec![meta(10, 0, 5, 8, 10), meta(11, 0, 2, 6, 10)]);
    let task = pick(&overlapping_l0, &opts()).unwrap();
    assert_eq!(
        task.trivial_move(),
        None,
        "L0 files 2..=6 and 5..=8 overlap"
    );

    let occupied_l1 = version_with(vec![
        meta(10, 0, 5, 8, 10),
        meta(11, 0, 2, 3, 10),
        meta(1, 1, 3, 4, 10),
    ]);
    let task = pick(&occupied_l1, &opts()).unwrap();
    assert_eq!(
        task.trivial_move(),
        None,
        "L1's 3..=4 overlaps the span 2..=8"
    );
}

/// Options whose target file size makes "small" (at most 1/`SMALL_FILE_DIVISOR` of it) 100 bytes.
fn small_opts() -> Options {
    Options {
        sst_target_file_size_bytes: 100 * SMALL_FILE_DIVISOR,
        l1_target_size_bytes: 1 << 30,
        ..opts()
    }
}

#[test]
fn a_run_of_small_adjacent_files_merges_into_one_file_at_its_level() {
    let v = version_with(vec![
        meta(1, 2, 0, 1, 500),
        meta(2, 2, 2, 3, 100),
        meta(3, 2, 4, 5, 10),
        meta(4, 2, 6, 7, 10),
        meta(5, 2, 8, 9, 10),
        meta(6, 2, 10, 11, 10),
        meta(7, 3, 4, 4, 10),
    ]);
    let task = pick(&v, &small_opts()).unwrap();
    assert_eq!(numbers(&task), vec![(2, vec![2, 3, 4, 5, 6])]);
    assert_eq!(task.output_level, 2);
    assert!(task.single_output);
    assert!(!task.bottommost, "file 7 at L3 lies in the span");
    assert_eq!(task.trivial_move(), None, "a merge, not a move");
    let after = install(&v, &task);
    check_invariants(&after);
    assert_eq!(after.files(2).len(), 2);
    assert_eq!(pick(&after, &small_opts()), None, "the merge ends the run");
}

#[test]
fn short_runs_and_big_files_stop_a_run() {
    // Three small files, a big one, three small ones: no run reaches four.
    let split = version_with(vec![
        meta(1, 1, 0, 0, 10),
        meta(2, 1, 1, 1, 10),
        meta(3, 1, 2, 2, 10),
        meta(4, 1, 3, 3, 101),
        meta(5, 1, 4, 4, 10),
        meta(6, 1, 5, 5, 10),
        meta(7, 1, 6, 6, 10),
    ]);
    assert_eq!(pick(&split, &small_opts()), None);
    // Five files of 100 bytes, the most a small file holds: one run of five.
    let at_limit = version_with((1..=5).map(|i| meta(i, 3, i as u8, i as u8, 100)).collect());
    let task = pick(&at_limit, &small_opts()).unwrap();
    assert_eq!(numbers(&task), vec![(3, vec![1, 2, 3, 4, 5])]);
    assert!(task.bottommost);
}

#[test]
fn a_run_is_cut_at_the_most_files_one_merge_reads() {
    let files = SMALL_RUN_FILES_MAX as u64 + 10;
    let v = version_with(
        (1..=files)
            .map(|i| meta(i, 1, i as u8, i as u8, 1))
            .collect(),
    );
    let task = pick(&v, &small_opts()).unwrap();
    assert_eq!(task.inputs[0].files.len(), SMALL_RUN_FILES_MAX);
    let after = install(&v, &task);
    let task = pick(&after, &small_opts()).unwrap();
    assert_eq!(
        task.inputs[0].files.len(),
        11,
        "the merged file and the ten left"
    );
    assert_eq!(pick(&install(&after, &task), &small_opts()), None);
}

#[test]
fn oversized_levels_come_before_small_file_merges() {
    let mut files: Vec<FileMeta> = (1..=4).map(|i| meta(i, 2, i as u8, i as u8, 10)).collect();
    files.push(meta(9, 1, 20, 30, 1000));
    let v = version_with(files);
    let task = pick(
        &v,
        &Options {
            l1_target_size_bytes: 300,
            ..small_opts()
        },
    )
    .unwrap();
    assert_eq!(numbers(&task), vec![(1, vec![9]), (2, vec![])]);
    assert!(!task.single_output);
}
