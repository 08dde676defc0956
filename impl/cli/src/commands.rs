//! The database commands' arguments, as clap parses them on the command line and on a shell
//! line: what each command takes, its help and its example. [`crate::db_cmd`] runs them.

use clap::Subcommand;

use crate::load::LoadFormat;
use crate::search::SearchCommand;

/// A database command.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Set KEY to VALUE (`-`: stdin, `@PATH`: a file's bytes). Prints the revision.
    ///
    /// Example: `kvstore --db d put photo @cat.png`, `echo -n v | kvstore --db d put k -`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Attach the key to this lease.
        #[arg(long, default_value_t = 0)]
        lease: u64,
    },
    /// Print the value of KEY (exit code 1 if absent); `--rev` reads at an older revision.
    ///
    /// Example: `kvstore --db d -o raw get photo > cat.png`.
    Get {
        /// The key.
        key: String,
        /// Read as of this revision.
        #[arg(long)]
        rev: Option<u64>,
    },
    /// Delete KEY (exit code 1 if it was absent). Prints the revision.
    Del {
        /// The key.
        key: String,
    },
    /// Print the keys and values of a range, in key order: `key<TAB>value` lines (escaped text
    /// unless `-o raw|hex|json`).
    ///
    /// Example: `kvstore --db d scan --prefix user/ --limit 10 -o json`.
    Scan {
        /// Only keys starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Only keys at or after this one.
        #[arg(long)]
        start: Option<String>,
        /// Only keys before this one.
        #[arg(long)]
        end: Option<String>,
        /// Descending key order.
        #[arg(long)]
        reverse: bool,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<usize>,
        /// Read as of this revision.
        #[arg(long)]
        rev: Option<u64>,
        /// Print keys only.
        #[arg(long)]
        keys_only: bool,
        /// Print the number of rows only.
        #[arg(long)]
        count: bool,
    },
    /// Compare and swap (etcd's txn): reads compares, a blank line, the ops to run if every
    /// compare holds, a blank line, the ops to run otherwise, from stdin in etcdctl's syntax.
    /// Prints SUCCESS or FAILURE, the revision and each op's result; exit code 1 if the
    /// compares failed. Compares: `value|version|create|mod|lease("KEY") =|!=|<|> OPERAND`;
    /// ops: `put KEY VALUE [--lease N]`, `get KEY [--prefix] [--limit N]`, `del KEY [--prefix]`.
    ///
    /// Example: `printf 'value("k") = "v1"\n\nput k v2\n\nget k\n' | kvstore --db d txn`.
    Txn,
    /// Search keys by substring or by edit distance, over the database's 3-gram key index
    /// (built in `<db>/index/` by the first search, caught up by later ones).
    ///
    /// Example: `kvstore --db d search contains 123`, `kvstore --db d search fuzzy colour`.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Forget the history below REV (etcd's compact): reads below it are refused afterwards.
    CompactHistory {
        /// The new history horizon.
        rev: u64,
    },
    /// Leases: grant, keep alive, revoke, show, list.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Print the changes to a range as they commit, from `--rev` on (history first), until
    /// `--count` events or Ctrl-C: `revision<TAB>PUT|DELETE<TAB>key[<TAB>value]` lines.
    ///
    /// Example: `kvstore --db d watch --prefix jobs/ --rev 1 --count 10`.
    Watch {
        /// Only keys starting with this prefix (default: every key).
        #[arg(long)]
        prefix: Option<String>,
        /// Start at this revision (history from the store, then live).
        #[arg(long)]
        rev: Option<u64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Write the retained history at the newest revision to FILE (`-`: stdout), in the export
    /// format (`spec/FORMAT.md` § 6), while writes may go on.
    ///
    /// Example: `kvstore --db d export backup.kvx`.
    Export {
        /// The file to write.
        file: String,
    },
    /// Read an export from FILE (`-`: stdin) into a new database at `--db` (all or nothing).
    ///
    /// Example: `kvstore --db copy --create import backup.kvx`.
    Import {
        /// The file to read.
        file: String,
    },
    /// Put the keys and values of FILE (`-`: stdin) in atomic batches: JSON lines as `dump`
    /// writes them, or `key<TAB>value` escaped text as `scan` prints it. A progress bar on a
    /// terminal.
    ///
    /// Example: `kvstore --db d dump > all.jsonl && kvstore --db e --create load all.jsonl`.
    Load {
        /// The file to read.
        file: String,
        /// How its lines are written.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: LoadFormat,
        /// Puts per committed batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
    },
    /// Print every key and value of one snapshot as JSON lines (what `load` reads).
    Dump,
    /// An interactive shell on the database: every command here, one a line.
    Shell,
    /// Print files and bytes per level, sizes, and the counters since open (`-o json`: one
    /// JSON object).
    Stats,
    /// Write the memtable to an SST.
    Flush,
    /// Compact every key down to the last level.
    Compact,
}

/// A lease command.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease of TTL seconds; prints its id.
    Grant {
        /// Its time to live, seconds.
        ttl: u64,
    },
    /// Refresh a lease's TTL once; prints the TTL.
    KeepAlive {
        /// The lease.
        id: u64,
    },
    /// Revoke a lease, deleting its keys; prints the revision.
    Revoke {
        /// The lease.
        id: u64,
    },
    /// Print a lease's TTL, time left and keys (exit code 1 if it is not granted).
    Show {
        /// The lease.
        id: u64,
    },
    /// Print the granted leases' ids.
    List,
}
