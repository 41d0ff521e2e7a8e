//! A local HTTP endpoint for the crate's unit tests: each connection's request is handed to
//! the test, and answered as `answer` says.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves on a free local port (on the current `LocalSet`); returns its base URL and the
/// requests read, in order. `answer` maps a request (its head and body as text) to a
/// status and a JSON body.
pub async fn serve(
    answer: impl Fn(&str) -> (u16, String) + 'static,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (sent, read) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_local(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = vec![0u8; 8192];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            let (status, body) = answer(&request);
            let _ = sent.send(request);
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (base, read)
}

/// Runs `test` on a current-thread runtime inside a `LocalSet`, as the runtime runs
/// connectors.
pub fn block_on<F: std::future::Future>(test: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, test)
}
