//! Reading an HTTP answer's body under a cap. A registry or token endpoint is untrusted: a body
//! announcing more than the cap (`Content-Length`) is refused without reading it, and one that
//! sends more is refused as soon as it passes the cap, so an endless or gigabyte answer costs at
//! most the cap (and one chunk) in memory. The small answers a probe reads — a token endpoint's
//! JSON, the body of `/v2/` — all go through [`read_capped_body`]; the proxy reads its upstreams'
//! token answers with it too.

use reqwest::Response;

/// Why [`read_capped_body`] returned no body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body announced or sent more than the cap.
    #[error("its answer is larger than {}", windlass_files::describe_size(*cap as u64))]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// Reading the body failed (the connection broke, the deadline passed).
    #[error("reading its answer failed: {0}")]
    Read(String),
}

/// The body of `response`, at most `cap` bytes of it (see the module documentation).
pub async fn read_capped_body(mut response: Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(BodyError::TooLarge { cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| BodyError::Read(error.without_url().to_string()))?
    {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
