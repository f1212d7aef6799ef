//! The live feed's queue on SQS: each packed feed message (many records, at most
//! `polytape_feed::queue::MAX_MESSAGE_BYTES`) goes out in one `SendMessage`, without delay or
//! attributes; the trades function consumes them. One message per request rather than
//! `SendMessageBatch`: a batch is billed per 64 KiB of its summed payload just the same, and a
//! feed message is often near the 256 KiB a batch may carry in all.
//!
//! SQS accepts only the XML character set in a body (#x9, #xA, #xD, #x20–#xD7FF,
//! #xE000–#xFFFD, #x10000–#x10FFFF). A feed message is JSON whose control characters are
//! escaped already, but a WebSocket frame may carry U+FFFE or U+FFFF raw inside a string; those
//! are sent as their `\uFFFE`/`\uFFFF` JSON escapes, which decode to the same text, so a frame
//! Polymarket sent can never make the queue refuse the message that holds it.

use super::error::backend;
use super::{AwsStore, Resource};
use crate::error::Result;
use std::borrow::Cow;

/// SQS bills each 64 KiB of a request's payload as one request.
const BILLED_CHUNK_BYTES: usize = 64 * 1024;

/// The requests SQS bills for a message of `bytes`: one per 64 KiB or part of it.
pub(crate) fn billed_requests(bytes: usize) -> u64 {
    bytes.div_ceil(BILLED_CHUNK_BYTES).max(1) as u64
}

/// `body` with the characters SQS refuses that JSON text may hold raw (U+FFFE, U+FFFF, only
/// ever inside strings) written as JSON escapes; the body itself when it has none.
pub(crate) fn sqs_safe(body: &str) -> Cow<'_, str> {
    if !body.contains(['\u{FFFE}', '\u{FFFF}']) {
        return Cow::Borrowed(body);
    }
    Cow::Owned(
        body.replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff"),
    )
}

impl AwsStore {
    /// Sends one live feed message to the live queue (`POLYTAPE_LIVE_QUEUE_URL`), counted in
    /// [`super::WriteStats::live_sends`] and the 64 KiB chunks it is billed as. A store given
    /// no live queue fails with [`crate::StoreError::Config`]; SQS errors are classified as
    /// every other call's (throttling and 5xx retryable; a refused body, a missing queue or
    /// access denied not).
    pub async fn send_live_message(&self, body: &str) -> Result<()> {
        let url = self.names.require(Resource::LiveQueue)?;
        let body = sqs_safe(body);
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body.as_ref())
            .send()
            .await
            .map_err(|e| backend("SendMessage", url, e))?;
        self.record_live_send(body.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_billed_per_64_kib_started() {
        assert_eq!(billed_requests(0), 1);
        assert_eq!(billed_requests(700), 1);
        assert_eq!(billed_requests(64 * 1024), 1);
        assert_eq!(billed_requests(64 * 1024 + 1), 2);
        assert_eq!(billed_requests(250 * 1024), 4);
    }

    #[test]
    fn characters_sqs_refuses_become_json_escapes_of_the_same_text() {
        let body = serde_json::json!({"tape": {"text": "a\u{FFFF}b\u{FFFE}c"}}).to_string();
        assert!(body.contains('\u{FFFF}'), "serde_json leaves them raw");
        let safe = sqs_safe(&body);
        assert!(!safe.contains(['\u{FFFE}', '\u{FFFF}']));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["tape"]["text"], "a\u{FFFF}b\u{FFFE}c");
        assert!(matches!(sqs_safe("{\"a\":1}"), Cow::Borrowed(_)));
    }
}
