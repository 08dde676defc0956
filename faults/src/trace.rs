//! The numbered log of every operation a [`crate::SimVfs`] served.
//!
//! Invariants:
//! - Entry `i` of the trace has `index == i`: every `Vfs` and `VfsFile` call gets the next number,
//!   whether it succeeds, fails, is faulted or hits the crash (the trace stops growing at
//!   [`crate::TRACE_ENTRIES_MAX`] entries; numbering goes on).
//! - An entry holds no handle ids or addresses, only what replays: op, paths, offset, length,
//!   outcome and the fault injected, so two runs of one seed print identical traces.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which `Vfs` or `VfsFile` method an operation was.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OpKind {
    /// `Vfs::create`
    Create,
    /// `Vfs::open`
    Open,
    /// `Vfs::open_read`
    OpenRead,
    /// `Vfs::rename`
    Rename,
    /// `Vfs::remove`
    Remove,
    /// `Vfs::hard_link`
    HardLink,
    /// `Vfs::list`
    List,
    /// `Vfs::exists`
    Exists,
    /// `Vfs::create_dir_all`
    CreateDirAll,
    /// `Vfs::sync_dir`
    SyncDir,
    /// `Vfs::lock`
    Lock,
    /// `VfsFile::read_at`
    ReadAt,
    /// `VfsFile::append`
    Append,
    /// `VfsFile::sync_data`
    SyncData,
    /// `VfsFile::size`
    Size,
    /// `VfsFile::set_len`
    SetLen,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            OpKind::Create => "create",
            OpKind::Open => "open",
            OpKind::OpenRead => "open_read",
            OpKind::Rename => "rename",
            OpKind::Remove => "remove",
            OpKind::HardLink => "hard_link",
            OpKind::List => "list",
            OpKind::Exists => "exists",
            OpKind::CreateDirAll => "create_dir_all",
            OpKind::SyncDir => "sync_dir",
            OpKind::Lock => "lock",
            OpKind::ReadAt => "read_at",
            OpKind::Append => "append",
            OpKind::SyncData => "sync_data",
            OpKind::Size => "size",
            OpKind::SetLen => "set_len",
        };
        f.write_str(name)
    }
}

/// How an operation ended.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Outcome {
    /// It succeeded (possibly with an injected silent fault, see [`TraceEntry::fault`]).
    Ok,
    /// It failed with this error kind and message.
    Failed(io::ErrorKind, String),
    /// The disk was crashed: this op and every later one fail.
    Crashed,
}

/// One numbered operation.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TraceEntry {
    /// 0-based operation number; [`crate::SimVfs::crash_at`] takes the same numbers.
    pub index: u64,
    /// Which method.
    pub op: OpKind,
    /// The path it named (for file methods, the path the handle was opened with).
    pub path: PathBuf,
    /// The destination of a rename.
    pub to: Option<PathBuf>,
    /// The byte offset, for `read_at` and `append` (the old end of file).
    pub offset: Option<u64>,
    /// The byte length: read, appended, or the new length of `set_len`.
    pub len: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The fault injected into it, if any (e.g. "lying fsync", "misdirected write").
    pub fault: Option<&'static str>,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}", self.index, self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " -> {}", to.display())?;
        }
        if let Some(offset) = self.offset {
            write!(f, " offset={offset}")?;
        }
        if let Some(len) = self.len {
            write!(f, " len={len}")?;
        }
        match &self.outcome {
            Outcome::Ok => write!(f, ": ok")?,
            Outcome::Failed(kind, message) => write!(f, ": error {kind:?} ({message})")?,
            Outcome::Crashed => write!(f, ": crashed")?,
        }
        if let Some(fault) = self.fault {
            write!(f, " [fault: {fault}]")?;
        }
        Ok(())
    }
}

/// Formats a whole trace, one entry a line: what a failing test prints.
pub fn format_trace(trace: &[TraceEntry]) -> String {
    let mut out = String::new();
    for entry in trace {
        out.push_str(&entry.to_string());
        out.push('\n');
    }
    out
}
