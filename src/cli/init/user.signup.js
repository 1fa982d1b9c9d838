// Handles `user.signup` events. Try it:
//   eddy run handlers/user.signup.js --event '{"type":"user.signup","data":{"name":"Ada","email":"ada@example.com"}}'
// or run `eddy dev` and send one: eddy send user.signup '{"name":"Ada","email":"ada@example.com"}'
/** @type {eddy.Config} */
export const config = {
  timeoutMs: 10000,
  // To call an API, allow its host and list the secrets the handler needs (eddy.toml grants
  // EXAMPLE_API_TOKEN in [secrets] allow; set its value in .env):
  // allowNet: ["api.example.com"],
  // secrets: ["EXAMPLE_API_TOKEN"],
};

/**
 * @param {eddy.Event<{ name?: string, email?: string }>} event
 * @param {eddy.Context} ctx
 */
export default async function (event, ctx) {
  const { name, email } = event.data ?? {};
  if (!email) throw new NonRetryableError("a signup without an email cannot be processed");
  const signups = ((await ctx.state.get("signups")) ?? 0) + 1;
  await ctx.state.set("signups", signups);
  console.log(`welcome, ${name ?? email}: signup number ${signups}`);
  // Throwing retries the delivery on a schedule; return to succeed:
  // const res = await fetch("https://api.example.com/welcome", {
  //   method: "POST",
  //   headers: { authorization: `Bearer ${ctx.secrets.EXAMPLE_API_TOKEN}`, "idempotency-key": ctx.idempotencyKey },
  //   body: JSON.stringify({ email }),
  // });
  // if (!res.ok) throw new Error(`api answered ${res.status}`);
}
