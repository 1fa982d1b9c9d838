//! The runnable examples (`cargo run --example github-to-slack`, `crm-sync`) as tests: the
//! same scenarios, then assertions on what the fake services ended up holding. Also checks
//! that the fakes refuse what the real services refuse, since the examples rely on it.

#[path = "../../examples/crm-sync/scenario.rs"]
mod crm_sync;
#[path = "../../examples/support/fakes/mod.rs"]
mod fakes;
#[path = "../../examples/github-to-slack/scenario.rs"]
mod github_to_slack;
#[path = "../../examples/support/launcher.rs"]
mod launcher;

use std::collections::BTreeSet;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn github_to_slack_keeps_one_thread_per_pull_request() {
    let outcome = github_to_slack::run(false).await.expect("the scenario runs");
    assert_eq!(outcome.problems(), Vec::<String>::new());
    let statuses: Vec<u16> = outcome.webhooks.iter().map(|(_, status, _)| *status).collect();
    assert_eq!(statuses, [202, 200, 401, 202, 202]);
    assert_eq!(outcome.webhooks[1].2["duplicate"], true, "a redelivery is recognised");
    assert_eq!(outcome.webhooks[2].2["error"], "bad_signature");

    let merged = outcome.root(42).expect("a root message for #42");
    assert!(
        merged.text.starts_with(":large_purple_circle: *Merged* "),
        "{}",
        merged.text
    );
    assert!(
        merged.text.contains("|acme/widgets#42: Retry CRM calls with backoff>"),
        "{}",
        merged.text
    );
    assert_eq!(merged.edits, 1, "opened posted it, closed updated it once");
    let replies: Vec<&str> = outcome.thread(merged).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(replies, [":large_purple_circle: Merged by octocat into `main`"]);

    // Closed before any `opened` arrived: a root of its own, already showing the status.
    let closed = outcome.root(43).expect("a root message for #43");
    assert!(closed.text.starts_with(":red_circle: *Closed* "), "{}", closed.text);
    assert!(
        closed.text.contains("Try a &lt;blink&gt; tag &amp; see"),
        "mrkdwn is escaped: {}",
        closed.text
    );
    let replies: Vec<&str> = outcome.thread(closed).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(replies, [":red_circle: Closed without merging by hubot"]);
    assert_eq!(outcome.messages.len(), 4, "two roots and two replies, nothing twice");

    let calls: Vec<(&str, u16)> = outcome.calls.iter().map(|c| (c.method.as_str(), c.status)).collect();
    assert_eq!(calls[..2], [("chat.postMessage", 429), ("chat.postMessage", 200)]);
    assert!(
        outcome.calls.iter().all(|c| c.status == 429 || c.result == "ok"),
        "{:?}",
        outcome.calls
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_sync_converges_through_rate_limits() {
    let outcome = crm_sync::run(false).await.expect("the scenario runs");
    assert_eq!(outcome.problems(), Vec::<String>::new());
    assert_eq!(
        outcome.proxied, outcome.upstream,
        "the proxy answers exactly what the API answered"
    );
    let statuses: Vec<u16> = outcome.upstream.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [201, 201, 200, 204]);

    let contact = |contacts: &[Value], id: &str| contacts.iter().find(|c| c["external_id"] == id).cloned();
    let created = contact(&outcome.after_create, "1").expect("contact 1 after the creates");
    assert_eq!(
        (
            &created["name"],
            &created["email"],
            &created["plan"],
            &created["status"]
        ),
        (
            &json!("Ada Lovelace"),
            &json!("ada@example.com"),
            &json!("free"),
            &json!("active")
        )
    );
    let updated = contact(&outcome.after_update, "1").expect("contact 1 after the update");
    assert_eq!(
        (&updated["email"], &updated["plan"]),
        (&json!("ada@analytical.example"), &json!("pro"))
    );
    assert_eq!(updated["id"], created["id"], "the update changed the same contact");
    let deleted = contact(&outcome.contacts, "2").expect("contact 2 at the end");
    assert_eq!(
        (&deleted["status"], &deleted["name"]),
        (&json!("deleted"), &json!("Grace Hopper"))
    );
    assert!(deleted["deleted_at"].is_string(), "{deleted}");

    let accounts: BTreeSet<String> = outcome.contacts.iter().map(|c| c["external_id"].to_string()).collect();
    assert_eq!(
        (outcome.contacts.len(), accounts.len()),
        (2, 2),
        "one contact per account"
    );
    let throttled = outcome.crm_requests.iter().filter(|r| r.status == 429).count();
    assert!(
        throttled >= 1 && !outcome.retried_after_429().is_empty(),
        "{:?}",
        outcome.crm_requests
    );
    assert!(
        outcome.deliveries.iter().any(|d| d["attempts"].as_u64() >= Some(2)),
        "{:?}",
        outcome.deliveries
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_slack_answers_errors_the_way_slack_does() {
    let slack = fakes::FakeSlack::start("xoxb-right", &["C1"]).await.unwrap();
    let call = |method: &'static str, token: Option<&'static str>, args: Value| {
        let url = format!("{}/api/{method}", slack.url);
        async move {
            let mut request = fakes::local_client()
                .post(url)
                .header("content-type", "application/json");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.body(args.to_string()).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap(),
            )
        }
    };
    let post = json!({ "channel": "C1", "text": "hi" });
    let error = |answer: (u16, Value)| (answer.0, answer.1["ok"].clone(), answer.1["error"].clone());
    assert_eq!(
        error(call("chat.postMessage", None, post.clone()).await),
        (200, json!(false), json!("not_authed"))
    );
    let wrong = call("chat.postMessage", Some("xoxb-wrong"), post.clone()).await;
    assert_eq!(error(wrong), (200, json!(false), json!("invalid_auth")));
    let nowhere = call("chat.postMessage", Some("xoxb-right"), json!({ "text": "hi" })).await;
    assert_eq!(error(nowhere), (200, json!(false), json!("channel_not_found")));
    let lost = call(
        "chat.update",
        Some("xoxb-right"),
        json!({ "channel": "C1", "ts": "1.2", "text": "x" }),
    )
    .await;
    assert_eq!(error(lost), (200, json!(false), json!("message_not_found")));

    let (_, root) = call("chat.postMessage", Some("xoxb-right"), post).await;
    assert_eq!((&root["ok"], &root["channel"]), (&json!(true), &json!("C1")));
    let ts = root["ts"].as_str().unwrap().to_owned();
    let reply = json!({ "channel": "C1", "text": "in thread", "thread_ts": ts });
    let (_, answer) = call("chat.postMessage", Some("xoxb-right"), reply).await;
    assert_ne!(answer["ts"], root["ts"], "every message gets its own ts");
    slack.rate_limit_next(1);
    let (status, _) = call(
        "chat.postMessage",
        Some("xoxb-right"),
        json!({ "channel": "C1", "text": "x" }),
    )
    .await;
    assert_eq!(status, 429);
    let thread: Vec<String> = slack.thread("C1", &ts).into_iter().map(|m| m.text).collect();
    assert_eq!(thread, ["in thread"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_crm_checks_tokens_replays_idempotent_requests_and_rate_limits() {
    let crm = fakes::FakeCrm::start("t0ken", 1).await.unwrap();
    let put = |token: &'static str, key: &'static str, body: Value| {
        let request = fakes::local_client()
            .put(format!("{}/contacts/a1", crm.url))
            .bearer_auth(token);
        let request = request
            .header("idempotency-key", key)
            .header("content-type", "application/json");
        async move { request.body(body.to_string()).send().await.unwrap() }
    };
    let ada = json!({ "name": "Ada", "email": "ada@example.com" });
    assert_eq!(put("nope", "k1", ada.clone()).await.status(), 401);
    let throttled = put("t0ken", "k1", ada.clone()).await;
    assert_eq!(
        (throttled.status().as_u16(), &throttled.headers()["retry-after"]),
        (429, &"1".parse().unwrap())
    );
    let first = put("t0ken", "k1", ada.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = serde_json::from_slice(&first.bytes().await.unwrap()).unwrap();
    let again = put("t0ken", "k1", ada.clone()).await;
    assert_eq!(
        (again.status().as_u16(), &again.headers()["idempotent-replayed"]),
        (201, &"true".parse().unwrap())
    );
    let replayed: Value = serde_json::from_slice(&again.bytes().await.unwrap()).unwrap();
    assert_eq!(replayed, first, "the stored answer is replayed");
    assert_eq!(
        put("t0ken", "k1", json!({ "name": "Eve" })).await.status(),
        422,
        "same key, other body"
    );
    let update = put("t0ken", "k2", json!({ "plan": "pro" })).await;
    assert_eq!(update.status(), 200);
    let contacts = crm.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        (&contacts[0]["plan"], &contacts[0]["name"], &contacts[0]["revision"]),
        (&json!("pro"), &json!("Ada"), &json!(2))
    );
}
