//! The shell on a real terminal: python3's `pty` runs `kvstore shell` on a pseudo-terminal, so
//! rustyline does the line editing (backspace, Ctrl-A, the up arrow's history) and the prompts,
//! and a put, gets, and a multi-line txn are typed key by key.

use std::process::Command;

/// Types each step's keys once the previous step's expected output has appeared after the
/// previous keys (a key typed before the shell reads it is still read); prints the
/// whole transcript (exit 1 and the transcript so far when a step times out).
const DRIVER: &str = r#"
import os, pty, select, sys, time
binary, db = sys.argv[1], sys.argv[2]
steps = [
    (b"put greeting hello\r", b"revision 1"),
    (b"get greetingX\x7f\r", b"\r\nhello\r\n"),
    (b"txn\r", b"compares> "),
    (b'value("greeting") = "hello"\r', b"compares> "),
    (b"\r", b"success> "),
    (b"put greeting bye\r", b"success> "),
    (b"\r", b"failure> "),
    (b"\r", b"SUCCESS"),
    (b"et greeting\x01g\r", b"\r\nbye\r\n"),
    (b"\x1b[A\r", b"\r\nbye\r\n"),
    (b"exit\r", None),
]
pid, fd = pty.fork()
if pid == 0:
    os.environ["HOME"] = db
    os.execv(binary, [binary, "--db", db, "--create", "shell"])
out = b""
def wait_for(token, mark=0):
    global out
    deadline = time.time() + 20
    while token not in out[mark:]:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
        if not ready:
            sys.stdout.write(repr(out))
            sys.exit("timed out waiting for %r" % token)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        out += chunk
wait_for(b"> ")
for step in steps:
    keys, token = step
    mark = len(out)
    os.write(fd, keys)
    if token is not None:
        wait_for(token, mark)
_, status = os.waitpid(pid, 0)
try:
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
sys.stdout.write(repr(out))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn the_shell_edits_lines_and_runs_a_txn_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_kvstore"))
        .arg(dir.path())
        .output()
        .expect("python3 runs the pseudo-terminal");
    let transcript = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{transcript}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The prompt names the database; each result stands on its own line (repr'd: `\r\n`).
    assert!(transcript.contains("kvstore "), "{transcript}");
    for line in [
        "revision 1",
        "hello",
        "SUCCESS",
        "revision 2",
        "put greeting",
    ] {
        assert!(
            transcript.contains(&format!("\\r\\n{line}\\r\\n")),
            "no line {line:?} in {transcript}"
        );
    }
    assert_eq!(
        transcript.matches("\\r\\nbye\\r\\n").count(),
        2,
        "{transcript}"
    );
    let history = std::fs::read_to_string(dir.path().join(".kvstore_history")).unwrap();
    assert!(history.contains("get greeting\n"), "{history}");
}
