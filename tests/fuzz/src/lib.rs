//! The fuzz targets' checks (`targets`, one module per target) and the input format they
//! share, so seeds are readable text a person can write and libFuzzer's mutations still
//! reach every field.
//!
//! An input is a head and a body, split at the first empty line (`\n\n`), as in HTTP:
//!
//! ```text
//! <parameter line>            the first lines are parameters; how many, and what they
//! <parameter line>            mean, is up to each target
//! Header-Name: value          the other head lines are headers, in order
//!
//! body bytes, exactly as they follow the empty line
//! ```
//!
//! Lines that are not a valid header (no `:`, a bad name, a value `http` refuses) are
//! skipped rather than ending the input: a mutation that breaks one line still tests the rest.

pub mod targets;

use http::{HeaderMap, HeaderName, HeaderValue};

/// One decoded input.
pub struct Input<'a> {
    /// The parameter lines; missing ones are empty.
    pub params: Vec<&'a [u8]>,
    /// The header lines after the parameters, as raw `(name, value)` bytes.
    pub header_lines: Vec<(&'a [u8], &'a [u8])>,
    /// Everything after the first empty line; empty when there is none.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data` into `param_count` parameter lines, header lines and the body.
    pub fn parse(data: &'a [u8], param_count: usize) -> Self {
        let (head, body) = match find(data, b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &data[data.len()..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let params = (0..param_count).map(|_| lines.next().unwrap_or_default()).collect();
        let header_lines = lines
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
            })
            .collect();
        Self {
            params,
            header_lines,
            body,
        }
    }

    /// Parameter `i` as text, or `None` when it is not UTF-8.
    pub fn param_str(&self, i: usize) -> Option<&'a str> {
        std::str::from_utf8(self.params[i]).ok()
    }

    /// The header lines as a map, appended in order so repeated names keep every value.
    pub fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        self.append_headers(&mut map);
        map
    }

    /// Appends the header lines to `map`, after whatever it already holds.
    pub fn append_headers(&self, map: &mut HeaderMap) {
        for (name, value) in &self.header_lines {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                map.append(name, value);
            }
        }
    }
}

/// A decimal number from a parameter line, or `default` when it is not one.
pub fn number_or(param: &[u8], default: u64) -> u64 {
    std::str::from_utf8(param)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default)
}

/// The provider a parameter names; any other value picks one by its length, so mutations
/// of the name still reach every provider.
pub fn kind(param: &[u8]) -> eddy::ingest::webhook::Kind {
    use eddy::ingest::webhook::Kind;
    match param {
        b"github" => Kind::Github,
        b"slack" => Kind::Slack,
        b"stripe" => Kind::Stripe,
        b"standard" => Kind::Standard,
        other => [Kind::Github, Kind::Slack, Kind::Stripe, Kind::Standard][other.len() % 4],
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
