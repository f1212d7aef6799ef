//! The endpoints the feed task's AWS SDK calls when the task has no IPv4 address
//! (template.yaml `FeedNetwork` ipv6-only sets `AWS_USE_DUALSTACK_ENDPOINT=true`, which
//! `aws_config::load_defaults` reads): each service the task uses must resolve to its
//! dual-stack host, which answers over IPv6, never to the IPv4-only `<service>.<region>.amazonaws.com`.
#![cfg(feature = "aws")]

fn host(endpoint: Result<aws_sdk_s3::config::endpoint::Endpoint, impl std::fmt::Debug>) -> String {
    endpoint.expect("an endpoint").url().to_string()
}

#[tokio::test]
async fn given_dual_stack_then_s3_sqs_and_dynamodb_resolve_to_their_ipv6_hosts() {
    use aws_sdk_dynamodb::config::endpoint as ddb;
    use aws_sdk_s3::config::endpoint as s3;
    use aws_sdk_sqs::config::endpoint as sqs;
    use ddb::ResolveEndpoint as _;
    use s3::ResolveEndpoint as _;
    use sqs::ResolveEndpoint as _;
    for (dual, want) in [
        (
            true,
            [
                "https://polytape-data.s3.dualstack.us-east-1.amazonaws.com",
                "https://sqs.us-east-1.api.aws",
                "https://dynamodb.us-east-1.api.aws",
            ],
        ),
        (
            false,
            [
                "https://polytape-data.s3.us-east-1.amazonaws.com",
                "https://sqs.us-east-1.amazonaws.com",
                "https://dynamodb.us-east-1.amazonaws.com",
            ],
        ),
    ] {
        // The bucket's own host (virtual-hosted style: path style is only for moto).
        let s3 = host(
            s3::DefaultResolver::new()
                .resolve_endpoint(
                    &s3::Params::builder()
                        .region("us-east-1")
                        .bucket("polytape-data")
                        .use_dual_stack(dual)
                        .build()
                        .expect("S3 parameters"),
                )
                .await,
        );
        let sqs = host(
            sqs::DefaultResolver::new()
                .resolve_endpoint(
                    &sqs::Params::builder()
                        .region("us-east-1")
                        .use_dual_stack(dual)
                        .build()
                        .expect("SQS parameters"),
                )
                .await,
        );
        let ddb = host(
            ddb::DefaultResolver::new()
                .resolve_endpoint(
                    &ddb::Params::builder()
                        .region("us-east-1")
                        .use_dual_stack(dual)
                        .build()
                        .expect("DynamoDB parameters"),
                )
                .await,
        );
        assert_eq!([s3, sqs, ddb], want.map(String::from), "dual-stack {dual}");
    }
}
