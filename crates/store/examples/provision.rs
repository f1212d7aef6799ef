//! Creates polytape's tables, bucket and ticks queue on a local AWS stand-in (moto) and prints
//! the environment the functions read, for running them by hand:
//!
//! ```sh
//! cargo run -p polytape-store --features aws --example provision -- http://127.0.0.1:5055 dev
//! ```

use aws_config::{BehaviorVersion, Region};
use polytape_store::aws::{provision, AwsNames};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(endpoint), prefix) = (args.next(), args.next().unwrap_or_else(|| "dev".into()))
    else {
        return Err("usage: provision <endpoint-url> [name-prefix]".into());
    };
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
    let cfg = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&endpoint)
        .load()
        .await;
    let names = provision::create_all(&cfg, &AwsNames::unique(&prefix)).await?;
    println!("AWS_ENDPOINT_URL={endpoint}");
    println!("AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\nAWS_REGION=us-east-1");
    println!("POLYTAPE_MARKETS_TABLE={}", names.markets_table);
    println!("POLYTAPE_OPS_TABLE={}", names.ops_table);
    println!("POLYTAPE_BUCKET={}", names.bucket);
    println!("POLYTAPE_TICKS_QUEUE_URL={}", names.ticks_queue_url);
    Ok(())
}
