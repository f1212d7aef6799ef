//! What the CLI's tests share: the `polytape` binary (or another program) started with its
//! standard output read line by line.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// `polytape run --simulate [extra…] --port 0 --data-dir data`, logging at info without
/// colours, its standard error to `stderr`: the process and the lines it prints.
pub fn polytape_run(data: &Path, extra: &[&str], stderr: Stdio) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_polytape"));
    cmd.args(["run", "--simulate"])
        .args(extra)
        .args(["--port", "0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(stderr);
    spawn_lines(cmd)
}

/// Starts `cmd` with its standard output piped: the process and the lines it prints, read on a
/// thread of their own until the pipe closes (also once nobody receives them any more, so the
/// process never blocks on a full pipe).
pub fn spawn_lines(mut cmd: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("its stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}
