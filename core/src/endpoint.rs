//! A node's base URL, as an operator or a peer gives it: checked once, at the boundary (the
//! divide call, a membership announcement, `SAPIX_ENDPOINT`), so a URL no HTTP client can use
//! is refused there as bad input instead of failing later as an unreachable peer.

/// The longest accepted endpoint, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// Why an endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not `http://` or `https://`.
    #[error("must be an http:// or https:// URL")]
    Scheme,
    /// Nothing between the scheme and the path.
    #[error("has no host")]
    NoHost,
    /// Longer than [`MAX_ENDPOINT_LEN`].
    #[error("is longer than {MAX_ENDPOINT_LEN} bytes")]
    TooLong,
    /// A character no URL carries unescaped (space, control, non-ASCII, quote, ...).
    #[error("holds the character {0:?}, which a URL cannot carry unescaped")]
    Char(char),
    /// A query or fragment: an endpoint is a base URL.
    #[error("is a base URL and may not carry a query (?) or fragment (#)")]
    QueryOrFragment,
}

/// `s` trimmed of spaces and trailing slashes, if it is a usable base URL:
/// `http[s]://host[:port][/path]`.
pub fn endpoint(s: &str) -> Result<String, EndpointError> {
    let s = s.trim().trim_end_matches('/');
    if s.len() > MAX_ENDPOINT_LEN {
        return Err(EndpointError::TooLong);
    }
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or(EndpointError::Scheme)?;
    if let Some(c) = rest.chars().find(|c| !url_char(*c)) {
        return Err(EndpointError::Char(c));
    }
    if rest.contains(['?', '#']) {
        return Err(EndpointError::QueryOrFragment);
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(EndpointError::NoHost);
    }
    Ok(s.to_string())
}

/// RFC 3986's unreserved, reserved and `%` characters.
fn url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_is_kept_without_its_trailing_slash() {
        assert_eq!(
            endpoint("http://replica-eu:7475/"),
            Ok("http://replica-eu:7475".into())
        );
        assert_eq!(
            endpoint(" https://[::1]:7475 "),
            Ok("https://[::1]:7475".into())
        );
        assert_eq!(
            endpoint("https://gw.example/sapix"),
            Ok("https://gw.example/sapix".into())
        );
    }

    #[test]
    fn what_no_client_can_call_is_refused() {
        assert_eq!(endpoint("ftp://x"), Err(EndpointError::Scheme));
        assert_eq!(endpoint(""), Err(EndpointError::Scheme));
        // Trailing slashes go first, so a bare scheme is no URL at all.
        assert_eq!(endpoint("http://"), Err(EndpointError::Scheme));
        assert_eq!(endpoint("http://:7475"), Err(EndpointError::NoHost));
        assert_eq!(endpoint("http:///path"), Err(EndpointError::NoHost));
        assert_eq!(endpoint("http://R\u{1}"), Err(EndpointError::Char('\u{1}')));
        assert_eq!(endpoint("http://a b"), Err(EndpointError::Char(' ')));
        assert_eq!(endpoint("http://é"), Err(EndpointError::Char('é')));
        assert_eq!(
            endpoint("http://a?x=1"),
            Err(EndpointError::QueryOrFragment)
        );
        let long = format!("http://{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(endpoint(&long), Err(EndpointError::TooLong));
    }
}
