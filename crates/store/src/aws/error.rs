//! SDK errors to [`StoreError::Backend`]: the reason names the operation and the resource (a
//! missing table or bucket must say which), and `retryable` says whether the same call may
//! succeed later — throttling, 5xx, timeouts and requests that never got a response — or
//! not — validation, a missing resource, access denied.

use crate::error::StoreError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes that mean "busy, try again" across DynamoDB, S3 and SQS.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "TransactionInProgressException",
    "SlowDown",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "KMSThrottlingException",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// True when a service error code says a retry may succeed.
pub(crate) fn retryable_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

/// `op` on `resource` failed with `err`.
pub(crate) fn backend<E>(op: &str, resource: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &err {
        // The request may or may not have reached the service; every write here is
        // idempotent, so sending it again is safe.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status();
            retryable_code(err.code()) || status.is_server_error() || status.as_u16() == 429
        }
        // A request that could not be built fails the same way every time.
        _ => false,
    };
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => match err.raw_response() {
            Some(raw) => format!("{code} (HTTP {})", raw.status().as_u16()),
            None => code.to_string(),
        },
        _ => DisplayErrorContext(&err).to_string(),
    };
    StoreError::Backend {
        reason: format!("{op} on {resource}: {detail}"),
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_s3::primitives::SdkBody;

    fn service(code: &str, status: u16) -> SdkError<GetItemError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service said so")
            .build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetItemError::generic(meta), raw)
    }

    fn classify(err: SdkError<GetItemError, HttpResponse>) -> (bool, String) {
        match backend("GetItem", "polytape-markets", err) {
            StoreError::Backend { reason, retryable } => (retryable, reason),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn given_throttling_or_5xx_then_retryable_and_given_a_missing_table_then_not() {
        for (code, status) in [
            ("ProvisionedThroughputExceededException", 400),
            ("ThrottlingException", 400),
            ("SlowDown", 503),
            ("SomethingNew", 500),
            ("SomethingNew", 429),
        ] {
            assert!(classify(service(code, status)).0, "{code} {status}");
        }
        for (code, status) in [
            ("ResourceNotFoundException", 400),
            ("ValidationException", 400),
            ("AccessDeniedException", 400),
            ("NoSuchBucket", 404),
        ] {
            assert!(!classify(service(code, status)).0, "{code} {status}");
        }
        let (_, reason) = classify(service("ResourceNotFoundException", 400));
        assert_eq!(
            reason,
            "GetItem on polytape-markets: ResourceNotFoundException: the service said so"
        );
    }

    #[test]
    fn given_a_timeout_or_a_failed_dispatch_then_retryable_and_a_bad_request_is_not() {
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(classify(timeout).0);
        let refused: SdkError<GetItemError, HttpResponse> = SdkError::dispatch_failure(
            aws_sdk_dynamodb::error::ConnectorError::io("connection refused".into()),
        );
        assert!(classify(refused).0);
        let construction: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure("missing key");
        assert!(!classify(construction).0);
    }
}
