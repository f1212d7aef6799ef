//! Why ws-fargate installs a crypto provider: in this build rustls has both `ring` and
//! `aws-lc-rs`, so without one the first `wss://` connection panics inside tokio-tungstenite.
//! (A test binary of its own: the provider is process-wide, and `tls.rs` installs it.)
#![allow(clippy::unwrap_used)]

#[tokio::test]
async fn without_a_provider_the_first_wss_connection_panics_for_want_of_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let url = format!("wss://{addr}/ws/market");
    let outcome = tokio::spawn(async move { tokio_tungstenite::connect_async(url).await }).await;
    let panic = outcome.expect_err("connecting without a provider panics");
    let message = panic.into_panic();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("CryptoProvider"), "{text}");
}
