// Handles `user.signup` events: greets the user and counts signups in handler state.
// Try it: cargo run -- run handlers/user.signup.js --event @examples/events/user.signup.json
export const config = { timeoutMs: 5000 };

export default async function (event, ctx) {
  const { name, email } = event.data;
  if (!email) throw new NonRetryableError("a signup without an email cannot be processed");
  const signups = ((await ctx.state.get("signups")) ?? 0) + 1;
  await ctx.state.set("signups", signups);
  await ctx.state.set(`user:${email}`, { name, firstSeen: event.time });
  console.log(`welcome, ${name} <${email}>: signup number ${signups}`);
}
