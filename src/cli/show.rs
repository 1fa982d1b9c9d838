//! `eddy events show` and `eddy deliveries show` for people: the answer of `GET /events/{id}`
//! or `GET /deliveries/{id}` as labelled lines and tables, times in the local time zone.
//! (`--json` prints the answer itself.)

use std::fmt::Write as _;

use serde_json::Value;

use super::client::table;

/// Milliseconds since the epoch as a local RFC 3339 time, to the millisecond.
pub fn local_time(ms: u64) -> String {
    let Ok(ms) = i64::try_from(ms) else {
        return ms.to_string();
    };
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(utc) => utc
            .with_timezone(&chrono::Local)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        None => ms.to_string(),
    }
}

/// A time field of the answer, or `-` when it has none.
fn time_of(value: &Value) -> String {
    value.as_u64().map_or("-".into(), local_time)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `GET /events/{id}`'s answer: the event, its data, its deliveries and its earlier versions.
pub fn event(answer: &Value) -> String {
    let (record, event) = (&answer["event"], &answer["event"]["event"]);
    let mut out = String::new();
    let _ = writeln!(out, "event     {}", text_of(&event["id"]));
    let _ = writeln!(out, "type      {}", text_of(&event["type"]));
    let _ = writeln!(out, "source    {}", text_of(&event["source"]));
    if !event["subject"].is_null() {
        let _ = writeln!(out, "subject   {}", text_of(&event["subject"]));
    }
    let _ = writeln!(out, "time      {}", text_of(&event["time"]));
    let _ = writeln!(out, "received  {}", time_of(&record["received_ms"]));
    let _ = writeln!(out, "version   {}", text_of(&record["version"]));
    if let Some(fields) = record["redacted"].as_array().filter(|f| !f.is_empty()) {
        let fields: Vec<String> = fields.iter().map(text_of).collect();
        let _ = writeln!(
            out,
            "redacted  {} at {}",
            fields.join(", "),
            time_of(&record["redacted_ms"])
        );
    }
    let data = serde_json::to_string_pretty(&event["data"]).unwrap_or_default();
    let _ = writeln!(out, "data\n{}", indent(&data));
    let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
    match deliveries.is_empty() {
        true => out.push_str("deliveries: none (no handler routes this type)\n"),
        false => {
            let rows: Vec<Vec<String>> = deliveries.iter().map(delivery_row).collect();
            let headers = [
                "DELIVERY",
                "HANDLER",
                "STATUS",
                "ATTEMPTS",
                "NEXT ATTEMPT",
                "LAST ERROR",
            ];
            let _ = write!(out, "deliveries\n{}", indent(&table(&headers, &rows)));
        }
    }
    for version in answer["history"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "version {} (replaced {})\n{}",
            text_of(&version["version"]),
            time_of(&version["replaced_ms"]),
            indent(&serde_json::to_string_pretty(&version["data"]).unwrap_or_default())
        );
    }
    out
}

fn delivery_row(d: &Value) -> Vec<String> {
    vec![
        text_of(&d["id"]),
        text_of(&d["handler"]),
        text_of(&d["status"]),
        text_of(&d["attempts"]),
        time_of(&d["next_attempt_ms"]),
        text_of(&d["last_error"]),
    ]
}

/// `GET /deliveries/{id}`'s answer: the delivery, then each attempt as a row, and below the
/// table each attempt's console lines, fetches and error.
pub fn delivery(answer: &Value) -> String {
    let d = &answer["delivery"];
    let mut out = String::new();
    let _ = writeln!(out, "delivery  {}", text_of(&d["id"]));
    let _ = writeln!(
        out,
        "event     {} ({})",
        text_of(&d["event_id"]),
        text_of(&d["event_type"])
    );
    let _ = writeln!(out, "handler   {}", text_of(&d["handler"]));
    let _ = writeln!(out, "status    {}", text_of(&d["status"]));
    if let Some(key) = d["order_key"].as_str() {
        let _ = writeln!(out, "key       {key}{}", line_note(answer));
    }
    let _ = writeln!(out, "created   {}", time_of(&d["created_ms"]));
    if !d["next_attempt_ms"].is_null() {
        let _ = writeln!(out, "next      {}", time_of(&d["next_attempt_ms"]));
    }
    if !d["last_error"].is_null() {
        let _ = writeln!(out, "error     {}", text_of(&d["last_error"]));
    }
    let attempts = answer["attempts"].as_array().cloned().unwrap_or_default();
    if attempts.is_empty() {
        out.push_str("attempts: none yet\n");
        return out;
    }
    let rows: Vec<Vec<String>> = attempts.iter().map(attempt_row).collect();
    let headers = ["#", "STARTED", "DURATION", "OUTCOME", "REPLAY"];
    let _ = write!(out, "attempts\n{}", indent(&table(&headers, &rows)));
    for attempt in &attempts {
        out.push_str(&attempt_detail(attempt));
    }
    out
}

/// Where an ordered delivery stands in its key's line, when that matters to a reader.
fn line_note(answer: &Value) -> String {
    let d = &answer["delivery"];
    if let Some(front) = answer["blocked_by"].as_str() {
        return format!(" (waits for {front})");
    }
    match (d["status"].as_str(), d["in_line"].as_bool()) {
        (Some("dead"), Some(true)) => " (its key waits for it: replay it, or `eddy deliveries skip`)".to_owned(),
        _ => String::new(),
    }
}

fn attempt_row(a: &Value) -> Vec<String> {
    let outcome = match a["succeeded"].as_bool() {
        Some(true) => "succeeded".to_owned(),
        _ => text_of(&a["report"]["outcome"]["kind"]),
    };
    vec![
        text_of(&a["n"]),
        time_of(&a["started_ms"]),
        format!("{:.1} ms", a["duration_ms"].as_f64().unwrap_or(0.0)),
        outcome,
        if a["replay"] == true { "yes" } else { "no" }.to_owned(),
    ]
}

/// One attempt's console lines, fetches and failure; nothing for an attempt with none.
fn attempt_detail(a: &Value) -> String {
    let report = &a["report"];
    let mut lines = Vec::new();
    for log in report["logs"].as_array().into_iter().flatten() {
        lines.push(format!(
            "console.{}: {}",
            text_of(&log["level"]),
            text_of(&log["message"])
        ));
    }
    for fetch in report["fetches"].as_array().into_iter().flatten() {
        let status = fetch["status"].as_u64().map_or("no answer".into(), |s| s.to_string());
        let ms = fetch["duration_ms"].as_f64().unwrap_or(0.0);
        let waited = fetch["waited_ms"].as_f64().map_or(String::new(), |w| {
            format!(", {w:.1} ms of it waiting for the host's turn")
        });
        lines.push(format!(
            "fetch {} {} -> {status} ({ms:.1} ms{waited})",
            text_of(&fetch["method"]),
            text_of(&fetch["url"])
        ));
    }
    for step in report["steps"].as_array().into_iter().flatten() {
        lines.push(step_line(step));
    }
    let outcome = &report["outcome"];
    if outcome["status"] == "failure" {
        lines.push(format!(
            "error {}: {}",
            text_of(&outcome["name"]),
            text_of(&outcome["message"])
        ));
        if let Some(stack) = outcome["stack"].as_str() {
            lines.extend(stack.lines().skip(1).map(|l| format!("  {}", l.trim())));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!("attempt {}\n{}", text_of(&a["n"]), indent(&lines.join("\n")))
}

/// One `ctx.step` of an attempt: `step "create contact" ran (12.0 ms)`, `... recalled`, or
/// `... failed (3.1 ms): Error: ...`.
fn step_line(step: &Value) -> String {
    let name = text_of(&step["name"]);
    let ms = step["duration_ms"].as_f64().unwrap_or(0.0);
    match step["status"].as_str() {
        Some("recalled") => format!("step {name:?} recalled (its recorded result, not run again)"),
        Some("failed") => format!("step {name:?} failed ({ms:.1} ms): {}", text_of(&step["error"])),
        _ => format!("step {name:?} ran ({ms:.1} ms)"),
    }
}

/// `text` with every line indented by two spaces, ending in a newline.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const T: u64 = 1_796_000_000_000;

    #[test]
    fn an_event_shows_its_fields_data_deliveries_and_versions() {
        let answer = json!({
            "event": {"seq": 1, "received_ms": T, "version": 2, "deliveries": ["d1"], "redacted": [],
                "event": {"id": "e1", "type": "user.signup", "source": "eddy/http",
                    "time": "2026-12-07T21:00:00Z", "data": {"email": "ada@example.com"}}},
            "deliveries": [{"id": "d1", "handler": "crm", "status": "dead", "attempts": 4,
                "next_attempt_ms": null, "last_error": "Error: 503"}],
            "history": [{"version": 1, "replaced_ms": T, "data": {"email": "ada"}}]
        });
        let shown = event(&answer);
        for expected in [
            "event     e1\n",
            "type      user.signup\n",
            &format!("received  {}\n", local_time(T)),
            "version   2\n",
            "data\n  {\n    \"email\": \"ada@example.com\"\n  }\n",
            "  d1        crm      dead    4         -             Error: 503\n",
            &format!("version 1 (replaced {})\n", local_time(T)),
        ] {
            assert!(shown.contains(expected), "{expected:?} missing in\n{shown}");
        }
        assert!(!shown.contains("subject"), "{shown}");
    }

    #[test]
    fn a_delivery_shows_each_attempt_as_a_row_then_what_it_did() {
        let failed = json!({"status": "failure", "kind": "error", "name": "Error", "message": "api answered 503",
            "stack": "Error: api answered 503\n    at default (handlers/crm.js:4:9)"});
        let answer = json!({
            "delivery": {"id": "d1", "event_id": "e1", "event_type": "user.signup", "handler": "crm",
                "status": "pending", "attempts": 1, "created_ms": T, "updated_ms": T,
                "next_attempt_ms": T + 5000, "last_error": "Error: api answered 503"},
            "attempts": [{"n": 1, "started_ms": T, "duration_ms": 12.34, "succeeded": false, "replay": false,
                "report": {"outcome": failed, "logs": [{"time": "", "level": "log", "message": "calling"}],
                    "fetches": [{"method": "POST", "url": "https://api.example/x", "status": 503, "duration_ms": 9.0}]}}]
        });
        let shown = delivery(&answer);
        for expected in [
            "delivery  d1\n",
            "event     e1 (user.signup)\n",
            &format!("next      {}\n", local_time(T + 5000)),
            "error     Error: api answered 503\n",
            &format!("  1  {}  12.3 ms   error    no\n", local_time(T)),
            "attempt 1\n  console.log: calling\n  fetch POST https://api.example/x -> 503 (9.0 ms)\n",
            "  error Error: api answered 503\n    at default (handlers/crm.js:4:9)\n",
        ] {
            assert!(shown.contains(expected), "{expected:?} missing in\n{shown}");
        }
    }

    #[test]
    fn times_are_local_rfc_3339_to_the_millisecond() {
        let shown = local_time(T + 7);
        let parsed = chrono::DateTime::parse_from_rfc3339(&shown).unwrap();
        assert_eq!(parsed.timestamp_millis(), (T + 7) as i64);
        assert!(
            shown.ends_with(&chrono::Local::now().format("%:z").to_string()) || shown.ends_with('Z'),
            "{shown}"
        );
    }
}
