//! Turning a `POST /events` request into events: plain JSON (one or an array), CloudEvents
//! structured mode (single and batch) and binary mode (`ce-*` headers). Pure: no IO.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::event::{Event, EventError};
use crate::http::ApiError;

/// The `source` given to events that do not name one.
pub const DEFAULT_SOURCE: &str = "eddy/http";

/// The events in a request body.
pub fn events_from_request(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Event>, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if headers.contains_key("ce-type") {
        return Ok(vec![binary_mode(headers, &content_type, body)?]);
    }
    let values = match content_type.as_str() {
        "application/json" | "application/cloudevents+json" | "application/cloudevents-batch+json" => {
            match parse_json(body)? {
                Value::Array(items) => items,
                single => vec![single],
            }
        }
        other => return Err(unsupported(other)),
    };
    if values.is_empty() {
        return Err(ApiError::unprocessable("no_events", "the request holds no event"));
    }
    values.into_iter().map(structured).collect()
}

fn unsupported(content_type: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "content type {content_type:?} is not accepted: send application/json, \
             application/cloudevents+json, application/cloudevents-batch+json, or ce-* headers"
        ),
    )
}

/// Strict JSON: valid UTF-8, well-formed, nested at most 128 deep (serde_json's own limit).
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request("invalid_utf8", format!("the body is not valid UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            ApiError::unprocessable("too_deep", "JSON is nested deeper than 128 levels")
        } else {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        }
    })
}

/// One event in structured form (plain JSON or CloudEvents structured mode).
fn structured(value: Value) -> Result<Event, ApiError> {
    let value = match value {
        Value::Object(mut map) => {
            // CloudEvents carries binary data base64-encoded; keep it as that string.
            if !map.contains_key("data")
                && let Some(b64) = map.remove("data_base64")
            {
                map.insert("data".into(), b64);
            }
            for attribute in ["specversion", "datacontenttype", "dataschema"] {
                map.remove(attribute);
            }
            Value::Object(map)
        }
        other => other,
    };
    Event::from_value(value, DEFAULT_SOURCE).map_err(event_error)
}

/// CloudEvents binary mode: attributes in `ce-*` headers, the body is the data.
fn binary_mode(headers: &HeaderMap, content_type: &str, body: &[u8]) -> Result<Event, ApiError> {
    let data = match content_type {
        "application/json" | "" if !body.is_empty() => parse_json(body)?,
        _ if body.is_empty() => Value::Null,
        t if t.starts_with("text/") => Value::String(
            std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request("invalid_utf8", format!("the body is not valid UTF-8: {e}")))?
                .to_owned(),
        ),
        other => return Err(unsupported(other)),
    };
    let mut map = serde_json::Map::new();
    for attribute in ["id", "type", "source", "time", "subject"] {
        if let Some(value) = headers.get(format!("ce-{attribute}")) {
            let text = value
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid_header", format!("ce-{attribute} is not visible ASCII")))?;
            map.insert(attribute.into(), Value::String(text.to_owned()));
        }
    }
    map.insert("data".into(), data);
    Event::from_value(Value::Object(map), DEFAULT_SOURCE).map_err(event_error)
}

fn event_error(e: EventError) -> ApiError {
    match e {
        EventError::Json(detail) => ApiError::bad_request("invalid_json", detail),
        EventError::NotObject => ApiError::unprocessable("invalid_event", e.to_string()),
        EventError::MissingType => ApiError::unprocessable("missing_type", e.to_string()),
        EventError::InvalidType(..) => ApiError::unprocessable("invalid_type", e.to_string()),
        EventError::NotString(_) => ApiError::unprocessable("invalid_event", e.to_string()),
        EventError::InvalidAttribute(name, ..) => ApiError::unprocessable(attribute_code(name), e.to_string()),
    }
}

/// The error code of an invalid attribute: `invalid_id`, `invalid_source`, ...
fn attribute_code(name: &str) -> &'static str {
    match name {
        "id" => "invalid_id",
        "source" => "invalid_source",
        "time" => "invalid_time",
        "subject" => "invalid_subject",
        _ => "invalid_event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn json_headers() -> HeaderMap {
        headers(&[("content-type", "application/json; charset=utf-8")])
    }

    #[test]
    fn plain_single_and_batch() {
        let one = events_from_request(&json_headers(), br#"{"type":"a.b","data":{"x":1}}"#).unwrap();
        assert_eq!(
            (one.len(), one[0].kind.as_str(), one[0].source.as_str()),
            (1, "a.b", DEFAULT_SOURCE)
        );
        let two = events_from_request(&json_headers(), br#"[{"type":"a"},{"type":"b","id":"x"}]"#).unwrap();
        assert_eq!(two[1].id, "x");
    }

    #[test]
    fn cloudevents_structured_and_binary() {
        let h = headers(&[("content-type", "application/cloudevents+json")]);
        let body = br#"{"specversion":"1.0","id":"1","type":"t","source":"/s","data_base64":"aGk="}"#;
        let e = &events_from_request(&h, body).unwrap()[0];
        assert_eq!(
            (e.id.as_str(), e.source.as_str(), e.data.as_str()),
            ("1", "/s", Some("aGk="))
        );
        let h = headers(&[
            ("content-type", "application/json"),
            ("ce-type", "t.b"),
            ("ce-id", "9"),
            ("ce-specversion", "1.0"),
        ]);
        let e = &events_from_request(&h, br#"{"k":true}"#).unwrap()[0];
        assert_eq!(
            (e.id.as_str(), e.kind.as_str(), e.data["k"].as_bool()),
            ("9", "t.b", Some(true))
        );
    }

    #[test]
    fn bad_input_gets_the_right_status() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let cases: Vec<(HeaderMap, Vec<u8>, StatusCode, &str)> = vec![
            (
                json_headers(),
                b"{nope".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                json_headers(),
                vec![b'"', 0xff, b'"'],
                StatusCode::BAD_REQUEST,
                "invalid_utf8",
            ),
            (
                json_headers(),
                deep.into_bytes(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_deep",
            ),
            (
                json_headers(),
                b"[]".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_events",
            ),
            (
                json_headers(),
                br#"{"data":1}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_type",
            ),
            (
                json_headers(),
                br#"{"type":"a..b"}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
            ),
            (
                json_headers(),
                br#"{"type":"a","id":"victim\u0000other"}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_id",
            ),
            (
                json_headers(),
                br#"{"type":"a","id":""}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_id",
            ),
            (
                json_headers(),
                br#"{"type":"a","time":"yesterday"}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_time",
            ),
            (
                headers(&[
                    ("content-type", "application/json"),
                    ("ce-type", "a"),
                    ("ce-source", ""),
                ]),
                b"{}".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_source",
            ),
            (
                json_headers(),
                br#"{"type":"a","id":5}"#.to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_event",
            ),
            (
                headers(&[("content-type", "text/xml")]),
                b"<a/>".to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                HeaderMap::new(),
                br#"{"type":"a"}"#.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
        ];
        for (h, body, status, code) in cases {
            let err = events_from_request(&h, &body).unwrap_err();
            assert_eq!((err.status, err.error), (status, code), "{}", err.detail);
        }
    }
}
