//! The runtime's processes and endpoints as tests drive them: a child killed on drop,
//! a graceful stop by SIGTERM, and one HTTP/1.1 exchange.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM and waits up to 30 s for the process to exit; its status.
pub fn terminate(child: &mut Child) -> ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("omniflow did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one raw request (it should say `Connection: close`); the answer's status and
/// body, status 0 when the server could not be reached or hung up.
pub fn exchange(port: u16, request: &str) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// `GET path` on a local port.
pub fn get(port: u16, path: &str) -> (u16, String) {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Starts `omniflow sandbox` on `port` and waits until it listens; killed on drop.
pub fn sandbox(port: u16) -> Killed {
    sandbox_with(port, &[])
}

/// [`sandbox`] with more arguments (`--time-scale 600`).
pub fn sandbox_with(port: u16, args: &[&str]) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_omniflow"))
        .args(["sandbox", "--addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sandbox = Killed(child);
    // Ready when it answers, not when its port takes a connection: on a loaded machine
    // the two can be seconds apart.
    super::wait_for("the sandbox", Duration::from_secs(60), || {
        get(port, "/_sandbox/stats").0 == 200
    });
    sandbox
}

/// `POST path` with a JSON body on a local port.
pub fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}
