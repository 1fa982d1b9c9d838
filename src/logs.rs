//! The log targets eddy's own lines are filed under, beyond the module paths `tracing` gives
//! by default: the lines a person watching a running eddy filters on
//! (`EDDY_LOG=eddy=info,eddy::unrouted=debug`), each with the ids it concerns as fields
//! (`event_id`, `delivery_id`, `handler`, `attempt`, `source`, `reason`).

/// A failed attempt, with the time of its retry (warn), and a delivery declared dead (error).
pub const ATTEMPTS: &str = "eddy::attempts";
/// A webhook refused: unknown source, signature, size, or content (warn).
pub const WEBHOOKS: &str = "eddy::webhooks";
/// An event no handler's routes match, so nothing will run for it (debug).
pub const UNROUTED: &str = "eddy::unrouted";
/// A handler file that does not load, at start or at a reload (error).
pub const HANDLERS: &str = "eddy::handlers";

/// `text` on one line: a handler's error message may hold line breaks or other control
/// characters, which would let it forge log lines; they are written escaped (`\n`).
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_line_breaks_stays_on_one_line() {
        assert_eq!(one_line("TypeError: x"), "TypeError: x");
        assert_eq!(one_line("a\nb\r\tc\u{1b}[2J"), "a\\nb\\r\\tc\\u{1b}[2J");
    }
}
