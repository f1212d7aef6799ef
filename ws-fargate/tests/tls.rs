//! With [`ws_fargate::install_crypto_provider`] (what `main` does first), a `wss://` connection
//! gets as far as the TLS handshake: here against a 127.0.0.1 listener that is no TLS server,
//! so it fails with an error the shard reconnects after — not a panic. (The panic without it:
//! `tls_without_provider.rs`.)
#![allow(clippy::unwrap_used)]

#[tokio::test]
async fn with_the_provider_installed_a_wss_connection_reaches_the_handshake_and_fails_cleanly() {
    assert!(
        ws_fargate::install_crypto_provider(),
        "installed by this call"
    );
    assert!(
        !ws_fargate::install_crypto_provider(),
        "a second call leaves it"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        drop(socket);
    });
    let url = format!("wss://{addr}/ws/market");
    let outcome = tokio::spawn(async move { tokio_tungstenite::connect_async(url).await })
        .await
        .expect("no panic with a provider installed");
    let err = outcome.expect_err("no TLS server there");
    accepted.await.unwrap();
    let text = err.to_string();
    assert!(!text.contains("CryptoProvider"), "{text}");
}
