// What the Slack messages say about a pull request. Pure functions of the webhook payload.

// Slack's mrkdwn treats these three characters as markup; everything else is literal.
function escape(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function status(pr) {
  if (pr.merged) return ":large_purple_circle: *Merged*";
  if (pr.state === "closed") return ":red_circle: *Closed*";
  if (pr.draft) return ":white_circle: *Draft*";
  return ":large_green_circle: *Open*";
}

/** The root message: the pull request and its current status. */
export function rootText(payload) {
  const pr = payload.pull_request;
  const repo = payload.repository.full_name;
  const link = `<${pr.html_url}|${escape(repo)}#${pr.number}: ${escape(pr.title)}>`;
  return `${status(pr)} ${link}\nby ${escape(pr.user.login)} · \`${escape(pr.head.ref)}\` → \`${escape(pr.base.ref)}\``;
}

const REVIEW = {
  approved: ":white_check_mark: Approved by",
  changes_requested: ":x: Changes requested by",
  commented: ":speech_balloon: Reviewed with comments by",
};

/**
 * The thread reply for an event: a string, `null` when the event only changes the root
 * (opened, edited), or `undefined` when the event is not one this integration follows.
 */
export function replyText(eventType, payload) {
  const pr = payload.pull_request;
  const who = escape(payload.sender?.login ?? "someone");
  if (eventType === "github.pull_request_review.submitted") {
    const review = payload.review;
    const verdict = REVIEW[review.state] ?? `Reviewed (${escape(review.state)}) by`;
    return `${verdict} ${escape(review.user?.login ?? who)} (<${review.html_url}|review>)`;
  }
  switch (payload.action) {
    case "opened":
    case "edited":
      return null;
    case "closed":
      return pr.merged
        ? `:large_purple_circle: Merged by ${escape(pr.merged_by?.login ?? who)} into \`${escape(pr.base.ref)}\``
        : `:red_circle: Closed without merging by ${who}`;
    case "reopened":
      return `:large_green_circle: Reopened by ${who}`;
    case "synchronize":
      return `:arrow_up: ${who} pushed new commits (head \`${pr.head.sha.slice(0, 7)}\`)`;
    case "ready_for_review":
      return `:eyes: Ready for review`;
    case "converted_to_draft":
      return `:white_circle: Converted to draft by ${who}`;
    default:
      return undefined;
  }
}
