//! Request paths the proxy refuses, because their meaning would change on the way: the URL
//! library (or the upstream) resolves dot segments and treats `\` as `/`, so a request that
//! names one path could reach another, outside `[proxy] upstream`'s base path or past the
//! rules that name events.
//!
//! Refused, in any percent-encoding (decoded repeatedly, so `%252e` counts as `.`): a `.` or
//! `..` segment (also before a `;` parameter, as `..;`), a `/` or `\` inside a segment, a raw
//! `\`, and a NUL. Anything else is checked once more on the URL actually forwarded: if its
//! decoded path differs from the decoded request path, it is refused too. Empty segments
//! (`//`) are forwarded as they are: the URL library keeps them.

use percent_encoding::percent_decode;

/// Why a request path is refused (answered `400`, never forwarded).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    /// A segment that is `.` or `..` once decoded.
    #[error("the path has a dot segment ({0:?}): it would be resolved to another path before the upstream sees it")]
    DotSegment(String),
    /// A segment holding an (encoded) `/`, `\` or NUL, or a raw `\`.
    #[error("the path has a separator or NUL inside a segment ({0:?}): the upstream could split it differently")]
    Separator(String),
    /// The URL forwarded would not have the requested path.
    #[error("the path {path:?} would reach the upstream as {forwarded:?}")]
    Normalised { path: String, forwarded: String },
}

/// Most decoding rounds: enough for any encoding a client would stack.
const ROUNDS: usize = 8;

/// Ok if `path` (the request target's path, as received) has no segment whose meaning a
/// URL library or the upstream would change.
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.contains('\\') {
        return Err(PathError::Separator(path.to_owned()));
    }
    for segment in path.split('/') {
        let decoded = decode_fully(segment);
        let before_params = decoded.split(|&b| b == b';').next().unwrap_or_default();
        if matches!(before_params, b"." | b"..") || matches!(decoded.as_slice(), b"." | b"..") {
            return Err(PathError::DotSegment(segment.to_owned()));
        }
        if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(PathError::Separator(segment.to_owned()));
        }
    }
    Ok(())
}

/// Ok if the forwarded path `forwarded` means the same as the requested `wanted`.
pub fn check_forwarded(wanted: &str, forwarded: &str) -> Result<(), PathError> {
    if decode_fully(wanted) == decode_fully(forwarded) {
        return Ok(());
    }
    Err(PathError::Normalised {
        path: wanted.to_owned(),
        forwarded: forwarded.to_owned(),
    })
}

/// Percent-decodes until nothing changes (at most [`ROUNDS`] times).
fn decode_fully(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..ROUNDS {
        let next: Vec<u8> = percent_decode(&bytes).collect();
        if next == bytes {
            break;
        }
        bytes = next;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_hidden_separators_are_refused_in_any_encoding() {
        let dots = "/a/../b /a/.. /.. /a/./b /a/. /%2e%2e/b /%2E%2E/b /%2e./b /.%2E/b /%2e/b \
            /a/%252e%252e/b /a/%25252E./b /a/..;/b /a/.;x/b /a/%2e%2e;jsessionid=1/b";
        for path in dots.split_whitespace() {
            assert!(matches!(check_path(path), Err(PathError::DotSegment(_))), "{path}");
        }
        let separators = "/a%2fb /a%2F..%2Fb /a%5cb /a%255cb /a\\b /a%00b /a/%2500";
        for path in separators.split_whitespace() {
            assert!(matches!(check_path(path), Err(PathError::Separator(_))), "{path}");
        }
        let fine = "/ /accounts/1 /a//b /a/.../b /a/..b/c /a/b.. /.well-known/x /a%20b /v1.2/x /a;b=1 /%41";
        for path in fine.split_whitespace() {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn a_forwarded_path_must_mean_the_requested_one() {
        assert_eq!(check_forwarded("/a/%7Bx%7D", "/a/{x}"), Ok(()));
        assert_eq!(check_forwarded("/a b", "/a%20b"), Ok(()));
        let err = check_forwarded("/api/../admin", "/admin").unwrap_err();
        assert!(
            err.to_string().contains("would reach the upstream as \"/admin\""),
            "{err}"
        );
    }

    /// Whatever `check_path` lets through, the URL library forwards unchanged in meaning.
    #[test]
    fn accepted_paths_survive_the_url_library() {
        let fine = "/ /accounts/1 /a//b /a/.../b /a/..b/c /.well-known/x /a%20b /a;b=1 /%41 /a/%7e";
        for path in fine.split_whitespace() {
            let mut url = url::Url::parse("http://upstream.example/base").unwrap();
            let wanted = format!("/base{path}");
            url.set_path(&wanted);
            assert_eq!(check_forwarded(&wanted, url.path()), Ok(()), "{path}");
        }
    }
}
