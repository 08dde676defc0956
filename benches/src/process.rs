//! What Linux says about this process and a directory: peak RSS (`VmHWM`), bytes this process
//! caused to be written to storage (`/proc/self/io` `write_bytes`), and the bytes a directory holds.
//!
//! Each figure is `None` where the OS does not provide it (not Linux, or `/proc` not mounted).

use std::path::Path;

/// Peak resident set size of this process in bytes (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes this process sent (or caused to be sent) to storage so far: `write_bytes` minus
/// `cancelled_write_bytes` of `/proc/self/io`. Counts page-cache pages dirtied by `write` and by
/// stores to shared mappings alike, so it is the same measure for every engine.
pub fn storage_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    let written = field("write_bytes:")?;
    let cancelled = field("cancelled_write_bytes:").unwrap_or(0);
    Some(written.saturating_sub(cancelled))
}

/// Total bytes of the regular files under `dir`, recursively (apparent sizes). Sparse files
/// (LMDB's map) count their allocated blocks instead, so a preallocated map is not counted. A
/// file the engine removes while it is being listed (a compaction's input) is not counted: seen
/// at N = 10M, where background compaction is still deleting tables after the write phase.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len().min(meta.blocks() * 512);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_bytes_sums_files_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [1u8; 5000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [2u8; 3000]).unwrap();
        assert_eq!(dir_bytes(dir.path()).unwrap(), 8000);
    }

    #[test]
    fn proc_figures_exist_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 0);
            assert!(storage_write_bytes().is_some());
        }
    }
}
