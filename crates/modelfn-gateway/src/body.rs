//! Reading a request body under a limit: a declared length over it is refused before a
//! byte is read, and the buffer grows with what arrives, not with what a client declares.
//! Every door and admin route that takes a whole body reads it here, so that each names
//! the limit it applies and applies the limit it names.

use crate::error::{body_error, ApiError};
use bytes::Bytes;

/// A request body as a door reads it: hyper's, or axum's.
pub(crate) trait RequestBody:
    http_body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send
{
}

impl<B: http_body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send> RequestBody for B {}

/// The whole of `body`, at most `limit` bytes: a 413 naming the limit past it, before
/// anything is read when the body declares its length.
pub(crate) async fn read<B: RequestBody>(body: B, limit: usize) -> Result<Bytes, ApiError> {
    read_body(body, limit, false).await
}

/// The whole of `body`, at most `limit` bytes (a 413 past it). A body that comes in one
/// frame (a request with a `Content-Length` that fits the read buffer: nearly every
/// invoke) is answered as that frame: no copy, and no list to gather frames in.
pub(crate) async fn read_body<B: RequestBody>(
    body: B,
    limit: usize,
    room_taken: bool,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    // A declared length over the limit is refused before anything is read: a client that
    // asked to `Expect: 100-continue` (curl, over 1 MB) is then never told to send it.
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(crate::error::too_large(limit));
    }
    let fail = |e: axum::BoxError| body_error(axum::Error::new(e), limit);
    let mut body = std::pin::pin!(http_body_util::Limited::new(body, limit));
    // The declared length (`Content-Length`, at most the limit) caps how the buffer grows.
    let declared =
        usize::try_from(http_body::Body::size_hint(&*body).lower()).map_or(limit, |n| n.min(limit));
    // The first frame, kept as it is until a second comes; then all gathered in `rest`.
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(fail)?.into_data() else {
            continue; // trailers: not part of the event
        };
        if first.is_none() && rest.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(head) = first.take() {
            // A length whose room is counted is taken at once: one buffer, no copies.
            let at_once = if room_taken { declared } else { 0 };
            grow(&mut rest, head.len().max(at_once), declared);
            rest.extend_from_slice(&head);
        }
        grow(&mut rest, data.len(), declared);
        rest.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(rest)))
}

/// Room in `buf` for `more` bytes: doubling, but never past the body's `declared` length
/// while the body fits in it, so a 5 MB body ends in a 5 MB buffer, not 8. Unless its
/// room was counted beforehand, the buffer follows what has arrived (at most about twice
/// it), never only what a client declares: a synchronous invoke that declares 6 MB and
/// sends 10 bytes holds kilobytes.
fn grow(buf: &mut Vec<u8>, more: usize, declared: usize) {
    let need = buf.len().saturating_add(more);
    if need <= buf.capacity() {
        return;
    }
    let mut room = need.max(buf.capacity().saturating_mul(2)).max(8 * 1024);
    if need <= declared {
        room = room.min(declared);
    }
    buf.reserve_exact(room - buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn frames(parts: &[&'static str]) -> impl RequestBody {
        let frames: Vec<Result<_, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        http_body_util::StreamBody::new(futures::stream::iter(frames))
    }

    #[test]
    fn a_body_buffer_grows_with_what_arrives_up_to_the_declared_length() {
        const MB: usize = 1024 * 1024;
        // 5 MB declared, arriving 64 KB at a time: room doubles, then stops at 5 MB.
        let mut buf = Vec::new();
        for _ in 0..80 {
            grow(&mut buf, 64 * 1024, 5 * MB);
            buf.resize(buf.len() + 64 * 1024, 0);
            assert!(
                buf.capacity() <= (2 * buf.len()).max(8 * 1024),
                "{}",
                buf.capacity()
            );
        }
        assert_eq!((buf.len(), buf.capacity()), (5 * MB, 5 * MB));
        // 6 MB declared, 10 bytes sent: kilobytes taken, not megabytes.
        let mut small = Vec::new();
        grow(&mut small, 10, 6 * MB);
        assert!(small.capacity() <= 8 * 1024, "{}", small.capacity());
        // More than declared (a chunked body declares nothing): it still fits.
        let mut over = Vec::new();
        grow(&mut over, 20_000, 0);
        assert!(over.capacity() >= 20_000);
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many_and_bounded() {
        assert_eq!(read_body(frames(&[]), 10, false).await.unwrap(), "");
        assert_eq!(read_body(frames(&["abc"]), 10, false).await.unwrap(), "abc");
        assert_eq!(
            read_body(frames(&["ab", "", "cd", "e"]), 10, false)
                .await
                .unwrap(),
            "abcde"
        );
        assert_eq!(
            read_body(frames(&["0123456789"]), 10, false).await.unwrap(),
            "0123456789"
        );
        for over in [&["0123456789a"][..], &["01234", "56789", "a"][..]] {
            let e = read_body(frames(over), 10, false).await.unwrap_err();
            assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE, "{over:?}");
        }
    }
}
