//! Whole HTTP/1.1 answers written by the listener itself, where no handler runs: past the
//! connection cap, a request head that timed out, and hyper's own refusals of a malformed or
//! oversized head (which it writes without a body), re-written in the API's JSON error shape.

/// 503 for a connection past `SAPIX_MAX_CONNECTIONS`.
pub(super) const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 82\r\n\r\n\
{\"error\":\"over_capacity\",\"message\":\"too many open connections; retry in a second\"}";

/// 408 for a request head not received within `SAPIX_HTTP_HEADER_TIMEOUT_MS`.
pub(super) const HEADER_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 97\r\n\r\n\
{\"error\":\"request_timeout\",\"message\":\"the request head did not arrive within the header timeout\"}";

/// Whether `head` is hyper's own refusal of a request head: a 400, 414 or 431 with no body.
/// Every answer of the API's has a JSON body, so none looks like this.
pub(super) fn is_refusal(head: &[u8]) -> bool {
    let status_ok = [&b"HTTP/1.1 400 "[..], b"HTTP/1.1 414 ", b"HTTP/1.1 431 "]
        .iter()
        .any(|p| head.starts_with(p));
    status_ok
        && head
            .windows(b"\r\ncontent-length: 0\r\n".len())
            .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"))
}

/// The JSON answer standing in for hyper's bare refusal whose status line starts `head`.
pub(super) fn for_refusal(head: &[u8]) -> Vec<u8> {
    let status = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(400);
    let (reason, code, message) = match status {
        431 => (
            "Request Header Fields Too Large",
            "header_too_large",
            "the request head is over 65536 bytes or 100 fields",
        ),
        414 => (
            "URI Too Long",
            "uri_too_long",
            "the request target is too long",
        ),
        505 => (
            "HTTP Version Not Supported",
            "http_version_not_supported",
            "only HTTP/1.0 and HTTP/1.1 are served",
        ),
        _ => (
            "Bad Request",
            "bad_request",
            "the request is not valid HTTP/1.1",
        ),
    };
    let status = if matches!(status, 431 | 414 | 505) {
        status
    } else {
        400
    };
    let body = format!("{{\"error\":\"{code}\",\"message\":\"{message}\"}}");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = std::str::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len(), "content-length matches the body");
        (head.to_string(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn canned_answers_are_well_formed_json_errors() {
        let (head, body) = split(OVER_CAPACITY);
        assert!(head.starts_with("HTTP/1.1 503 ") && head.contains("retry-after: 1"));
        assert_eq!(body["error"], "over_capacity");
        let (head, body) = split(HEADER_TIMEOUT);
        assert!(head.starts_with("HTTP/1.1 408 "));
        assert_eq!(body["error"], "request_timeout");
    }

    #[test]
    fn only_bodyless_head_refusals_are_taken_for_hyper_s() {
        assert!(is_refusal(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n"
        ));
        assert!(is_refusal(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_refusal(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 69\r\n\r\n"
        ));
        assert!(!is_refusal(
            b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_refusal(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_refusal(
            b"{\"data\": \"HTTP/1.1 400 \r\ncontent-length: 0\r\n\"}"
        ));
    }

    #[test]
    fn hyper_refusals_keep_their_status_and_gain_a_json_body() {
        for (hyper_head, status, code) in [
            (
                &b"HTTP/1.1 431 Request Header Fields Too Large\r\n"[..],
                431,
                "header_too_large",
            ),
            (b"HTTP/1.1 414 URI Too Long\r\n", 414, "uri_too_long"),
            (b"HTTP/1.1 400 Bad Request\r\n", 400, "bad_request"),
            (
                b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
                505,
                "http_version_not_supported",
            ),
            (b"garbage", 400, "bad_request"),
            (
                b"HTTP/1.1 500 Internal Server Error\r\n",
                400,
                "bad_request",
            ),
        ] {
            let answer = for_refusal(hyper_head);
            let (head, body) = split(&answer);
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert_eq!(body["error"], code);
        }
    }
}
