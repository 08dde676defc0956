//! The `kvstore` command-line tool. It grows with the engine; for now it is a placeholder.

fn main() {
    println!("kvstore {}", env!("CARGO_PKG_VERSION"));
}
