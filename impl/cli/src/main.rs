//! The `kvstore` command-line tool: `inspect` decodes a WAL segment, an SST or a manifest and
//! prints the decoded structure; `checkpoint` and `backup` copy a database ([`copy_cmd`]);
//! `--db DIR <command>` operates on a database ([`db_cmd`]), with
//! binary-safe arguments and output ([`bytes`]). Exit codes: 0 done or found, 1 not found, 2
//! usage, 3 an error.

mod bytes;
mod commands;
mod copy_cmd;
mod db_cmd;
mod interrupt;
mod load;
mod progress;
mod search;
mod serve;
mod shell;
mod stats;
mod txn;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kvstore::format::sst::{self, Entry};
use kvstore::format::wal::{self, BatchOp, ReplayEnd, Segment, WalBody};
use kvstore::format::{FormatError, manifest};
use kvstore::vfs::{OsVfs, Vfs};

/// Largest file `inspect` reads into memory.
const INSPECT_FILE_LEN_MAX: u64 = 1 << 30;

#[derive(Debug, Parser)]
#[command(
    name = "kvstore",
    version,
    about = "An embeddable LSM key/value store",
    after_help = "Exit codes: 0 done or found, 1 not found, 2 usage, 3 an error.\n\
                  Values: `-` reads stdin, `@PATH` a file, `@@x` is the text `@x`."
)]
struct Cli {
    /// The database directory (for every command but `inspect`).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Make the database if the directory holds none (otherwise that is an error).
    #[arg(long, global = true)]
    create: bool,
    /// Open the database read-only: nothing in its directory is written (reads only; writes
    /// fail), and other read-only openers may share it.
    #[arg(long, global = true, conflicts_with = "create")]
    read_only: bool,
    /// Keys and values on the command line are hex.
    #[arg(long, global = true)]
    hex: bool,
    /// How keys and values are printed.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value_t
    )]
    output: bytes::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a WAL segment, an SST or a manifest and print its structure.
    Inspect {
        /// The file to decode.
        file: PathBuf,
        /// What the file is; guessed from its name and first bytes when omitted.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
    },
    #[command(flatten)]
    Db(db_cmd::DbCommand),
    /// Write an openable copy of the database at `--db` into OUT (a new or empty directory) at
    /// one revision: tables hard-linked (copied across filesystems), a manifest, all synced.
    ///
    /// Example: `kvstore --db d checkpoint d-copy && kvstore --db d-copy scan`.
    Checkpoint(copy_cmd::CheckpointArgs),
    /// Incremental backups: create (from `--db`), list, verify, prune, restore.
    #[command(subcommand)]
    Backup(copy_cmd::BackupCommand),
    /// Serve etcd v3.4's gRPC API (etcdctl, etcd clients) over the database until SIGTERM.
    Serve(Box<serve::ServeArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Wal,
    Sst,
    Manifest,
}

fn guess_kind(path: &Path, bytes: &[u8]) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if wal::parse_segment_file_name(name).is_some() || name.ends_with(".log") {
        Some(Kind::Wal)
    } else if bytes.starts_with(&sst::SST_MAGIC) || name.ends_with(".sst") {
        Some(Kind::Sst)
    } else if name.starts_with("manifest") || bytes.first() == Some(&b'{') {
        Some(Kind::Manifest)
    } else {
        None
    }
}

/// Bytes shown as a string when printable ASCII, else as hex.
fn show(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!("0x{}", hex::encode(bytes))
    }
}

fn show_entry(e: &Entry) -> String {
    let value = e
        .value
        .as_deref()
        .map_or_else(|| "<tombstone>".to_owned(), show);
    format!(
        "{} = {value} (revision {}, wal_offset {}, created_at_ms {})",
        show(&e.key),
        e.revision,
        e.wal_offset,
        e.created_at_ms
    )
}

fn inspect_wal(path: &Path, bytes: &[u8]) -> Result<(), FormatError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let base = wal::parse_segment_file_name(name).unwrap_or(0);
    println!(
        "WAL segment, base logical offset {base}, {} bytes",
        bytes.len()
    );
    let out = wal::replay(
        &[Segment {
            base_offset: base,
            bytes,
        }],
        base,
    );
    for (offset, r) in &out.records {
        let put = |key: &[u8], value: &[u8], lease: u64| match lease {
            0 => format!("put {} = {}", show(key), show(value)),
            lease => format!("put {} = {} lease {lease}", show(key), show(value)),
        };
        let what = match &r.body {
            WalBody::Put { key, value, lease } => put(key, value, *lease),
            WalBody::Delete { key } => format!("delete {}", show(key)),
            WalBody::Batch(ops) => {
                let ops: Vec<String> = ops
                    .iter()
                    .map(|op| match op {
                        BatchOp::Put { key, value, lease } => put(key, value, *lease),
                        BatchOp::Delete { key } => format!("delete {}", show(key)),
                    })
                    .collect();
                format!("batch [{}]", ops.join(", "))
            }
            WalBody::LeaseGrant { lease, ttl_ms } => format!("grant lease {lease} ttl {ttl_ms} ms"),
            WalBody::LeaseRevoke { lease, keys } => {
                let keys: Vec<String> = keys.iter().map(|k| show(k)).collect();
                format!("revoke lease {lease} deleting [{}]", keys.join(", "))
            }
        };
        let stamp = match r.stamp {
            0 => String::new(),
            stamp => format!(" stamp {stamp}"),
        };
        println!(
            "@{offset}: revision {} created_at_ms {} synced_through {}{stamp}: {what}",
            r.revision, r.created_at_ms, r.synced_through
        );
    }
    match out.end {
        ReplayEnd::Clean { offset } => println!("end: clean at {offset}"),
        ReplayEnd::TornTail { offset, error, .. } => {
            println!("end: torn tail at {offset} ({error})")
        }
        ReplayEnd::Corrupt {
            offset,
            error,
            witness_offset,
            ..
        } => {
            println!(
                "end: CORRUPT record at {offset}; the record at {witness_offset} says it was synced"
            );
            return Err(error.at(offset));
        }
    }
    Ok(())
}

fn inspect_sst(bytes: &[u8]) -> Result<(), FormatError> {
    let t = sst::decode_table(bytes)?;
    println!("SST v{}, {} bytes", sst::SST_VERSION, bytes.len());
    println!(
        "footer: index_offset {} bloom_offset {:?} index_crc32c {:#010x}",
        t.footer.index_offset, t.footer.bloom_offset, t.footer.index_crc32c
    );
    if let Some(b) = &t.bloom {
        println!(
            "bloom: {} probes, {} bytes of bits",
            b.probes(),
            b.bits_len()
        );
    }
    for (i, b) in t.index.blocks.iter().enumerate() {
        let h = &b.handle;
        println!(
            "block {i}: offset {} stored_len {} {} crc32c {:#010x} first_key {}",
            h.offset,
            h.stored_len,
            if h.compressed { "lz4" } else { "raw" },
            h.crc32c,
            show(&b.first_key)
        );
    }
    println!("{} entries:", t.entries.len());
    for e in &t.entries {
        println!("  {}", show_entry(e));
    }
    Ok(())
}

fn inspect_manifest(bytes: &[u8]) -> Result<(), FormatError> {
    let m = manifest::decode(bytes)?;
    println!(
        "manifest v{}: next_file_number {} wal_offset {} last_revision {} last_stamp {}, {} files",
        m.format_version,
        m.next_file_number,
        m.wal_offset,
        m.last_revision,
        m.last_stamp,
        m.files.len()
    );
    for f in &m.files {
        println!(
            "  {} level {} keys {}..={} size {} wal_offset {} created_at_ms {}",
            f.file,
            f.level,
            show(&f.min_key),
            show(&f.max_key),
            f.size,
            f.wal_offset,
            f.created_at_ms
        );
    }
    Ok(())
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = OsVfs.open(path)?;
    let len = file.size()?;
    if len > INSPECT_FILE_LEN_MAX {
        return Err(std::io::Error::other(format!(
            "file is {len} bytes, over {INSPECT_FILE_LEN_MAX}"
        )));
    }
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    file.read_at(0, &mut buf)?;
    Ok(buf)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(cli.db.as_deref(), cli.create, *args),
        Command::Checkpoint(args) => copy_cmd::checkpoint(cli.db.as_deref(), &args),
        Command::Backup(command) => copy_cmd::backup(cli.db.as_deref(), &command),
        Command::Db(command) => match cli.db {
            Some(dir) => {
                let ctx = db_cmd::Context {
                    dir: &dir,
                    create: cli.create,
                    read_only: cli.read_only,
                    input: bytes::Input { hex: cli.hex },
                    format: cli.output,
                };
                db_cmd::run(&ctx, command)
            }
            None => {
                eprintln!("kvstore: this command needs --db DIR");
                ExitCode::from(2)
            }
        },
        Command::Inspect { file, kind } => {
            let bytes = match read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("kvstore: cannot read {}: {e}", file.display());
                    return ExitCode::from(db_cmd::EXIT_ERROR);
                }
            };
            let result = match kind.or_else(|| guess_kind(&file, &bytes)) {
                Some(Kind::Wal) => inspect_wal(&file, &bytes),
                Some(Kind::Sst) => inspect_sst(&bytes),
                Some(Kind::Manifest) => inspect_manifest(&bytes),
                None => {
                    eprintln!(
                        "kvstore: cannot tell what {} is; pass --kind",
                        file.display()
                    );
                    return ExitCode::from(2);
                }
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kvstore: {}: corruption: {e}", file.display());
                    ExitCode::from(db_cmd::EXIT_ERROR)
                }
            }
        }
    }
}
