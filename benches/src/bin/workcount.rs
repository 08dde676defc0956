//! `workcount`: the fixed workload of the CI regression check (see `kvstore_benches::workcount`).
//! `ci/bench-check.sh` runs it under `valgrind --tool=callgrind` and compares the instruction
//! count and the bytes written with `benches/baseline/workcount.txt`. It prints `name value` lines.

use kvstore_benches::BenchResult;
use kvstore_benches::workcount::{self, GETS, PUTS};

fn main() -> BenchResult<()> {
    let f = workcount::run(PUTS, GETS)?;
    println!("puts {PUTS}");
    println!("gets {GETS}");
    println!("user_bytes {}", f.user_bytes);
    println!("vfs_written_bytes {}", f.vfs_written_bytes);
    println!("write_amp_milli {}", f.write_amp_milli());
    println!("syncs {}", f.syncs);
    Ok(())
}
