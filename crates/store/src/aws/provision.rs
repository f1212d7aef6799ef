//! Creates the resources the adapters expect, exactly as template.yaml declares them: the
//! two tables (on-demand, the Markets [`ACTIVE_BY_END_INDEX`], TTL on Ops `expires_at`), the
//! bucket (which also holds the Latest objects), the ticks queue and, when named, the live
//! feed's queue. Tests run it against moto
//! with [`super::AwsNames::unique`] names; a developer can point it at moto too. Idempotent:
//! what already exists is left alone.
//!
//! [`migrate_markets`] brings Markets items written before the `active_by_end` index (no
//! `live` attribute) into it; `docs/aws.md` says when an operator runs it.
//!
//! ```no_run
//! # async fn f() -> polytape_store::Result<()> {
//! use polytape_store::aws::{provision, AwsNames, AwsStore};
//! let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let names = provision::create_all(&cfg, &AwsNames::unique("dev")).await?;
//! let store = AwsStore::new(&cfg, names);
//! # Ok(()) }
//! ```

use super::error::backend;
use super::item::s;
use super::markets::{ACTIVE_BY_END_INDEX, AWAITING_VALUE, END_DATE_ATTR, LIVE_ATTR, LIVE_VALUE};
use super::{AwsNames, SdkTimeouts};
use crate::error::{Result, StoreError};
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use std::time::Duration;

fn built<T>(r: std::result::Result<T, BuildError>) -> Result<T> {
    r.map_err(|e| StoreError::Encode(format!("request: {e}")))
}

fn attr(name: &str, t: ScalarAttributeType) -> Result<AttributeDefinition> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build(),
    )
}

fn key(name: &str, t: KeyType) -> Result<KeySchemaElement> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build(),
    )
}

/// Creates every resource of `names` and returns the names with the queue URLs SQS reports
/// (`names.ticks_queue_url` and `names.live_queue_url` may be bare queue names or URLs; the
/// last path segment is the queue's name). An empty live queue name creates no live queue.
pub async fn create_all(cfg: &aws_config::SdkConfig, names: &AwsNames) -> Result<AwsNames> {
    let ddb = super::ddb_client(cfg, SdkTimeouts::default());
    use ScalarAttributeType::{N, S};

    // Markets: condition_id, plus the sparse active_by_end index over the active markets.
    let markets = ddb
        .create_table()
        .table_name(&names.markets_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("condition_id", S)?)
        .attribute_definitions(attr(LIVE_ATTR, S)?)
        .attribute_definitions(attr(END_DATE_ATTR, N)?)
        .key_schema(key("condition_id", KeyType::Hash)?)
        .global_secondary_indexes(built(
            GlobalSecondaryIndex::builder()
                .index_name(ACTIVE_BY_END_INDEX)
                .key_schema(key(LIVE_ATTR, KeyType::Hash)?)
                .key_schema(key(END_DATE_ATTR, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build(),
        )?);
    create_table(&ddb, &names.markets_table, markets.send().await).await?;

    let ops = ddb
        .create_table()
        .table_name(&names.ops_table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", S)?)
        .attribute_definitions(attr("sk", S)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?);
    create_table(&ddb, &names.ops_table, ops.send().await).await?;
    enable_ttl(&ddb, &names.ops_table, "expires_at").await?;

    create_bucket(cfg, &names.bucket).await?;

    let ticks_queue_url = create_queue(cfg, &names.ticks_queue_url).await?;
    let live_queue_url = if names.live_queue_url.is_empty() {
        String::new()
    } else {
        create_queue(cfg, &names.live_queue_url).await?
    };
    Ok(AwsNames {
        ticks_queue_url,
        live_queue_url,
        ..names.clone()
    })
}

/// Creates the queue `name_or_url` names (its last path segment) and returns its URL.
async fn create_queue(cfg: &aws_config::SdkConfig, name_or_url: &str) -> Result<String> {
    let queue_name = name_or_url.rsplit('/').next().unwrap_or(name_or_url);
    let sqs = super::sqs_client(cfg, SdkTimeouts::default());
    let queue = sqs
        .create_queue()
        .queue_name(queue_name)
        .send()
        .await
        .map_err(|e| backend("CreateQueue", queue_name, e))?;
    queue.queue_url.ok_or_else(|| StoreError::Backend {
        reason: format!("CreateQueue on {queue_name}: no queue URL in the response"),
        retryable: false,
    })
}

/// Accepts a created table or one that already exists, then waits until it is ACTIVE.
async fn create_table<E>(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    created: std::result::Result<
        aws_sdk_dynamodb::operation::create_table::CreateTableOutput,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<()>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => return Err(backend("CreateTable", table, e)),
    }
    // Real DynamoDB takes seconds to create a table; moto is ACTIVE at once.
    for _ in 0..120 {
        let d = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| backend("DescribeTable", table, e))?;
        if d.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(StoreError::Backend {
        reason: format!("CreateTable on {table}: not ACTIVE after 120 s"),
        retryable: true,
    })
}

async fn enable_ttl(ddb: &aws_sdk_dynamodb::Client, table: &str, attribute: &str) -> Result<()> {
    let current = ddb
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| backend("DescribeTimeToLive", table, e))?;
    let status = current
        .time_to_live_description
        .and_then(|d| d.time_to_live_status);
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(built(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build(),
        )?)
        .send()
        .await
        .map_err(|e| backend("UpdateTimeToLive", table, e))?;
    Ok(())
}

async fn create_bucket(cfg: &aws_config::SdkConfig, bucket: &str) -> Result<()> {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let s3 = super::s3_client(cfg, SdkTimeouts::default());
    let mut req = s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if let Some(region) = cfg
        .region()
        .map(|r| r.as_ref())
        .filter(|r| *r != "us-east-1")
    {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(backend("CreateBucket", bucket, e)),
    }
}

/// Brings Markets items written before the [`ACTIVE_BY_END_INDEX`] into it: every active
/// market without [`LIVE_ATTR`] gets it (one conditional UpdateItem each, which touches
/// nothing else and leaves a market a writer just closed alone), every inactive market written
/// before results were tracked (no `result`) joins the awaiting partition so the resolutions
/// duty asks about it, and the old index's `tier_key` attribute is removed from every item
/// carrying it. Reads the table with one
/// paginated Scan. Idempotent; returns how many items it changed.
pub async fn migrate_markets(cfg: &aws_config::SdkConfig, markets_table: &str) -> Result<u64> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = aws_sdk_dynamodb::Client::new(cfg);
    let mut changed = 0u64;
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(markets_table)
            .filter_expression(
                "(#active = :yes AND attribute_not_exists(#live)) OR attribute_exists(tier_key) \
                 OR (#active <> :yes AND attribute_not_exists(#result) \
                 AND attribute_not_exists(#live))",
            )
            .expression_attribute_names("#active", "active")
            .expression_attribute_names("#live", LIVE_ATTR)
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| backend("Scan", markets_table, e))?;
        for item in page.items.unwrap_or_default() {
            let Some(id) = item.get("condition_id").cloned() else {
                continue;
            };
            let active = matches!(item.get("active"), Some(AttributeValue::Bool(true)));
            let unjudged = !active && !item.contains_key("result") && !item.contains_key(LIVE_ATTR);
            let mut req = ddb
                .update_item()
                .table_name(markets_table)
                .key("condition_id", id)
                .expression_attribute_names("#active", "active");
            req = if active {
                req.update_expression("SET #live = :live REMOVE tier_key")
                    .condition_expression("#active = :yes")
                    .expression_attribute_names("#live", LIVE_ATTR)
                    .expression_attribute_values(":live", s(LIVE_VALUE))
            } else if unjudged {
                req.update_expression("SET #live = :live REMOVE tier_key")
                    .condition_expression(
                        "#active <> :yes AND attribute_not_exists(#result) \
                         AND attribute_not_exists(#live)",
                    )
                    .expression_attribute_names("#live", LIVE_ATTR)
                    .expression_attribute_names("#result", "result")
                    .expression_attribute_values(":live", s(AWAITING_VALUE))
            } else {
                req.update_expression("REMOVE tier_key")
                    .condition_expression("#active <> :yes")
            }
            .expression_attribute_values(":yes", AttributeValue::Bool(true));
            match req.send().await {
                Ok(_) => changed += 1,
                // A writer changed the market meanwhile and wrote it in the new layout.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(backend("UpdateItem", markets_table, e)),
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(changed),
        }
    }
}
