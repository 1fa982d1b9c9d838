// Mirrors each pull request into one Slack message that always shows its current status,
// with a thread under it telling what happened: merged, closed, reopened, new commits,
// reviews. Events may arrive late or out of order (GitHub redelivers, eddy retries), so
// the root message is only ever moved forward, and an event whose pull request has no
// message yet (say, `closed` before `opened` got through) starts one.
import { slack } from "./_lib/slack.js";
import { replyText, rootText } from "./_lib/format.js";

export const on = ["github.pull_request.*", "github.pull_request_review.submitted"];

export const config = {
  secrets: ["SLACK_API_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL"],
  allowNet: ["slack.com", "127.0.0.1"],
  // One event at a time, so two events of a new pull request cannot both find no root
  // message and each post one.
  concurrency: 1,
  // Used for failures Slack gives no delay for; a 429's Retry-After takes precedence.
  retry: { schedule: ["1s", "5s", "30s", "2m", "10m", "1h"] },
  timeoutMs: 15_000,
};

// Events already answered in the thread, so an attempt retried after its reply went out
// does not post the reply twice. Retries come within hours, so the last few suffice.
const REMEMBERED_REPLIES = 20;

export default async function (event, ctx) {
  const payload = event.data;
  const reply = replyText(event.type, payload);
  if (reply === undefined || !payload.pull_request) {
    console.log(`${event.type}: not followed`);
    return;
  }
  const client = slack(ctx.secrets.SLACK_API_URL, ctx.secrets.SLACK_BOT_TOKEN);
  const pr = payload.pull_request;
  const key = `pr:${payload.repository.full_name}#${pr.number}`;
  let thread = await ctx.state.get(key);
  if (!thread) {
    thread = await startThread(client, ctx, key, payload);
  } else if (!isOlder(pr.updated_at, thread.updatedAt)) {
    thread = await refreshRoot(client, ctx, key, thread, payload);
  } else {
    console.log(`${key}: ${event.type} is older than the status shown; root left as is`);
  }
  if (reply && !thread.replied.includes(event.id)) {
    const posted = await client.post({ channel: thread.channel, thread_ts: thread.ts, text: reply });
    thread = { ...thread, replied: [...thread.replied, event.id].slice(-REMEMBERED_REPLIES) };
    await ctx.state.set(key, thread);
    console.log(`${key}: reply ${posted.ts} in thread ${thread.ts}`);
  }
}

async function startThread(client, ctx, key, payload) {
  const posted = await client.post({ channel: ctx.secrets.SLACK_CHANNEL, text: rootText(payload) });
  const thread = { channel: posted.channel, ts: posted.ts, updatedAt: payload.pull_request.updated_at, replied: [] };
  // Saved before anything else can fail: from here on, retries update this message.
  await ctx.state.set(key, thread);
  console.log(`${key}: root message ${posted.ts}`);
  return thread;
}

async function refreshRoot(client, ctx, key, thread, payload) {
  try {
    await client.update({ channel: thread.channel, ts: thread.ts, text: rootText(payload) });
  } catch (error) {
    // The root message was deleted in Slack: start a new thread rather than fail forever.
    if (error.slackError !== "message_not_found") throw error;
    return startThread(client, ctx, key, payload);
  }
  const updated = { ...thread, updatedAt: payload.pull_request.updated_at };
  await ctx.state.set(key, updated);
  console.log(`${key}: root message ${thread.ts} updated`);
  return updated;
}

// GitHub's timestamps have whole seconds, so events of the same second count as not older
// and the later-processed one wins.
function isOlder(time, than) {
  return Date.parse(time) < Date.parse(than);
}
