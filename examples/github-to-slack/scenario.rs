//! The github-to-slack example end to end: a fake Slack, eddy in-process with this folder's
//! own eddy.toml and handlers (copied to a temporary folder), and pull request webhooks
//! signed the way GitHub signs them. Shared by `main.rs` and the integration tests.

use serde_json::{Value, json};

use super::fakes::{FakeSlack, SlackCall, SlackMessage, github_delivery_id, send_github_webhook};
use super::launcher::Eddy;

const CHANNEL: &str = "C0PULLS42";
const BOT_TOKEN: &str = "xoxb-1700000000-demo-bot-token";
const WEBHOOK_SECRET: &str = "demo-webhook-secret-3f9a1c";

/// What happened: the webhook answers, and the channel and API calls as Slack saw them.
pub struct Outcome {
    /// (what was sent, HTTP status, JSON answer), in order.
    pub webhooks: Vec<(String, u16, Value)>,
    /// Every message of the channel, roots and replies, in the order they were posted.
    pub messages: Vec<SlackMessage>,
    pub calls: Vec<SlackCall>,
}

impl Outcome {
    /// The root message of pull request `number`.
    pub fn root(&self, number: u64) -> Option<&SlackMessage> {
        find_root(&self.messages, number)
    }

    /// The replies under `root`.
    pub fn thread(&self, root: &SlackMessage) -> Vec<&SlackMessage> {
        thread_of(&self.messages, root)
    }

    /// Everything that differs from what the example promises; empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let statuses: Vec<u16> = self.webhooks.iter().map(|(_, status, _)| *status).collect();
        let redelivery_seen = self
            .webhooks
            .get(1)
            .is_some_and(|(_, _, answer)| answer["duplicate"] == true);
        if statuses != [202, 200, 401, 202, 202] || !redelivery_seen {
            problems.push(format!(
                "webhook answers were {statuses:?}, expected [202, 200 duplicate, 401, 202, 202]"
            ));
        }
        let roots = self.messages.iter().filter(|m| m.thread_ts.is_none()).count();
        if roots != 2 {
            problems.push(format!(
                "{roots} root messages in the channel, expected 2 (one per pull request)"
            ));
        }
        self.check_thread(42, "*Merged*", "Merged by octocat", &mut problems);
        self.check_thread(43, "*Closed*", "Closed without merging by hubot", &mut problems);
        if !self.calls.iter().any(|c| c.result == "ratelimited") {
            problems.push("Slack never answered 429, so no retry was shown".into());
        }
        problems
    }

    fn check_thread(&self, number: u64, status: &str, reply: &str, problems: &mut Vec<String>) {
        let Some(root) = self.root(number) else {
            return problems.push(format!("no root message for #{number}"));
        };
        if !root.text.contains(status) {
            problems.push(format!(
                "the root message of #{number} does not say {status}: {}",
                root.text
            ));
        }
        let replies: Vec<&str> = self.thread(root).iter().map(|m| m.text.as_str()).collect();
        if replies.len() != 1 || !replies[0].contains(reply) {
            problems.push(format!(
                "the thread of #{number} is {replies:?}, expected one reply with {reply:?}"
            ));
        }
    }
}

/// Runs the whole scenario; `verbose` prints a transcript as it goes.
pub async fn run(verbose: bool) -> anyhow::Result<Outcome> {
    let say = |line: String| {
        if verbose {
            println!("{line}");
        }
    };
    let slack = FakeSlack::start(BOT_TOKEN, &[CHANNEL]).await?;
    // Slack's first answer is a 429, to show a retry that waits as Retry-After asks.
    slack.rate_limit_next(1);
    // What the handlers read from `.env`.
    let env = [
        ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("SLACK_API_URL", slack.url.clone()),
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_owned()),
        ("SLACK_CHANNEL", CHANNEL.to_owned()),
    ];
    let eddy = Eddy::start("github-to-slack", &env, None).await?;
    say("github-to-slack: pull request webhooks become one Slack thread per pull request".into());
    say(format!(
        "  fake Slack  {}  (channel {CHANNEL}; its first answer is a 429)",
        slack.url
    ));
    say(format!(
        "  eddy        {}  (GitHub posts to /webhooks/github)\n",
        eddy.url
    ));
    let result = exchange(&eddy, &slack, verbose).await;
    eddy.stop().await;
    let outcome = Outcome {
        webhooks: result?,
        messages: slack.messages(CHANNEL),
        calls: slack.calls(),
    };
    say(transcript(&outcome));
    Ok(outcome)
}

/// Sends the webhooks and waits for Slack to show each step.
async fn exchange(eddy: &Eddy, slack: &FakeSlack, verbose: bool) -> anyhow::Result<Vec<(String, u16, Value)>> {
    let mut demo = Demo {
        eddy,
        slack,
        url: format!("{}/webhooks/github", eddy.url),
        sent: Vec::new(),
        verbose,
    };
    demo.say("GitHub -> eddy".into());
    let (opened, payload) = (github_delivery_id(), pull_request("opened", 42, "2024-05-02T09:14:03Z"));
    let label = "pull_request.opened #42";
    demo.send(label, &opened, &payload, WEBHOOK_SECRET).await?;
    let again = "the same delivery again (redelivered)";
    demo.send(again, &opened, &payload, WEBHOOK_SECRET).await?;
    let forged = "pull_request.opened #42 signed with another secret";
    demo.send(forged, &github_delivery_id(), &payload, "guess").await?;
    demo.expect(42, "Open", 0).await?;

    let merged = pull_request("closed", 42, "2024-05-02T11:40:27Z");
    let label = "pull_request.closed #42 (merged)";
    demo.send(label, &github_delivery_id(), &merged, WEBHOOK_SECRET).await?;
    demo.expect(42, "Merged", 1).await?;
    // #43 was closed while the webhook was misconfigured: its `opened` never arrived.
    let closed = pull_request("closed", 43, "2024-05-02T12:05:10Z");
    let label = "pull_request.closed #43 (never opened here)";
    demo.send(label, &github_delivery_id(), &closed, WEBHOOK_SECRET).await?;
    demo.expect(43, "Closed", 1).await?;
    demo.say(String::new());
    Ok(demo.sent)
}

/// The webhook sender side of the scenario.
struct Demo<'a> {
    eddy: &'a Eddy,
    slack: &'a FakeSlack,
    url: String,
    sent: Vec<(String, u16, Value)>,
    verbose: bool,
}

impl Demo<'_> {
    fn say(&self, line: String) {
        if self.verbose {
            println!("{line}");
        }
    }

    /// Sends one `pull_request` webhook and prints what eddy answered.
    async fn send(&mut self, label: &str, delivery: &str, payload: &Value, secret: &str) -> anyhow::Result<()> {
        let (status, answer) = send_github_webhook(&self.url, secret, "pull_request", delivery, payload).await?;
        let said = match answer["error"].as_str() {
            Some(error) => format!("{error}: {}", answer["detail"].as_str().unwrap_or_default()),
            None => answer.to_string(),
        };
        self.say(format!("  {label:<52} {status} {said}"));
        self.sent.push((label.to_owned(), status, answer));
        Ok(())
    }

    /// Waits until Slack shows pull request `number` as `status` with `replies` replies.
    async fn expect(&self, number: u64, status: &str, replies: usize) -> anyhow::Result<()> {
        let thread = match replies {
            0 => String::new(),
            1 => ", with a reply in its thread".to_owned(),
            n => format!(", with {n} replies in its thread"),
        };
        let what = format!("Slack shows #{number} as {status}{thread}");
        let status = format!("*{status}*");
        let shown = || {
            let messages = self.slack.messages(CHANNEL);
            let root = find_root(&messages, number);
            root.is_some_and(|root| root.text.contains(&status) && thread_of(&messages, root).len() == replies)
        };
        self.eddy.wait_until(&what, shown).await?;
        self.say(format!("  ... {what}"));
        Ok(())
    }
}

fn find_root(messages: &[SlackMessage], number: u64) -> Option<&SlackMessage> {
    let tag = format!("acme/widgets#{number}:");
    messages.iter().find(|m| m.thread_ts.is_none() && m.text.contains(&tag))
}

fn thread_of<'a>(messages: &'a [SlackMessage], root: &SlackMessage) -> Vec<&'a SlackMessage> {
    let under = |m: &&SlackMessage| m.thread_ts.as_deref() == Some(root.ts.as_str());
    messages.iter().filter(under).collect()
}

/// A `pull_request` webhook payload as GitHub sends it (the fields the handlers read, and
/// enough of the rest to look like the real thing). Closed #42 is merged, closed #43 is not.
fn pull_request(action: &str, number: u64, at: &str) -> Value {
    let (title, author, branch, closer) = match number {
        42 => ("Retry CRM calls with backoff", "monalisa", "retry-backoff", "octocat"),
        _ => ("Try a <blink> tag & see", "hubot", "blink", "hubot"),
    };
    let closed = action == "closed";
    let merged = closed && number == 42;
    let user =
        |login: &str| json!({ "login": login, "type": "User", "html_url": format!("https://github.com/{login}") });
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "url": format!("https://api.github.com/repos/acme/widgets/pulls/{number}"),
            "html_url": format!("https://github.com/acme/widgets/pull/{number}"),
            "number": number,
            "state": if closed { "closed" } else { "open" },
            "draft": false,
            "title": title,
            "user": user(author),
            "created_at": "2024-05-02T09:14:03Z",
            "updated_at": at,
            "closed_at": if closed { Value::from(at) } else { Value::Null },
            "merged_at": if merged { Value::from(at) } else { Value::Null },
            "merged": merged,
            "merged_by": if merged { user(closer) } else { Value::Null },
            "head": { "ref": branch, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e" },
            "base": { "ref": "main", "sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b" },
            "commits": 3, "additions": 120, "deletions": 14, "changed_files": 5,
        },
        "repository": { "id": 700148813, "name": "widgets", "full_name": "acme/widgets", "private": false,
                        "html_url": "https://github.com/acme/widgets", "owner": user("acme") },
        "sender": user(if closed { closer } else { author }),
    })
}

fn transcript(outcome: &Outcome) -> String {
    let mut lines = vec!["Slack Web API calls".to_owned()];
    for call in &outcome.calls {
        let retried = if call.status == 429 {
            "  (Retry-After: 1; eddy retried 1 s later)"
        } else {
            ""
        };
        lines.push(format!(
            "  {:<18} {} {}{retried}",
            call.method, call.status, call.result
        ));
    }
    lines.push(format!("\n#{CHANNEL} at the end"));
    for root in outcome.messages.iter().filter(|m| m.thread_ts.is_none()) {
        let edited = if root.edits > 0 {
            format!("  (edited {}x)", root.edits)
        } else {
            String::new()
        };
        lines.push(format!(
            "  {}  {}{edited}",
            root.ts,
            root.text.replace('\n', "\n                     ")
        ));
        for reply in outcome.thread(root) {
            lines.push(format!("    └ {}  {}", reply.ts, reply.text));
        }
    }
    lines.join("\n")
}
