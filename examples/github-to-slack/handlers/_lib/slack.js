// A small client for the two Slack Web API methods the handlers use. Slack answers most
// errors with HTTP 200 and `{ ok: false, error }`, so `ok` is checked on every answer, and
// each error code is sorted into "retry later", "retry now" or "never retry".

// Codes that no retry will fix: the token, the channel or the message itself is wrong.
const PERMANENT = new Set([
  "invalid_auth",
  "not_authed",
  "account_inactive",
  "token_revoked",
  "token_expired",
  "no_permission",
  "missing_scope",
  "not_allowed_token_type",
  "channel_not_found",
  "not_in_channel",
  "is_archived",
  "msg_too_long",
  "no_text",
  "invalid_blocks",
  "invalid_arguments",
  "thread_not_found",
]);

// Slack's Retry-After is in seconds; without one, a minute is what its docs suggest waiting.
function retryAfterMs(response) {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 60_000;
}

function failure(method, code) {
  const message = `slack ${method}: ${code}`;
  const error = PERMANENT.has(code) ? new NonRetryableError(message) : new Error(message);
  error.slackError = code;
  return error;
}

/** A client for the workspace `apiUrl` (https://slack.com) with bot token `token`. */
export function slack(apiUrl, token) {
  const base = apiUrl.replace(/\/+$/, "");
  async function call(method, args) {
    const response = await fetch(`${base}/api/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify(args),
    });
    if (response.status === 429) {
      throw new RetryAfterError(`slack ${method}: rate limited`, retryAfterMs(response));
    }
    if (!response.ok) throw new Error(`slack ${method}: HTTP ${response.status}`);
    const answer = await response.json();
    if (!answer.ok) throw failure(method, answer.error ?? "unknown_error");
    return answer;
  }
  return {
    /** chat.postMessage: `{ channel, text, thread_ts? }`; resolves to `{ channel, ts, ... }`. */
    post: (args) => call("chat.postMessage", { unfurl_links: false, ...args }),
    /** chat.update: `{ channel, ts, text }`. */
    update: (args) => call("chat.update", args),
  };
}
