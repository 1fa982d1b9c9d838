// `POST /events` served by Deno (Deno.serve) with the same handler as eddy, no durability.
// Prints "listening on http://ADDR" once bound (port 0: the system picks), and exits when its
// standard input closes, so it never outlives the benchmark that started it.
import { accept } from "./peer.js";

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, async (req) => {
  const path = new URL(req.url).pathname;
  if (req.method !== "POST" || path !== "/events") return new Response(null, { status: 404 });
  const { status, body } = await accept(await req.text());
  return new Response(body, { status, headers: { "content-type": "application/json" } });
});

(async () => {
  const buffer = new Uint8Array(64);
  while ((await Deno.stdin.read(buffer)) !== null);
  Deno.exit(0);
})();
