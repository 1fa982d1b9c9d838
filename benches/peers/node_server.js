// `POST /events` served by Node.js (node:http) with the same handler as eddy, no durability.
// Prints "listening on http://ADDR" once bound (port 0: the system picks), and exits when its
// standard input closes, so it never outlives the benchmark that started it.
import http from "node:http";
import { accept } from "./peer.js";

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/events") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", async () => {
    const { status, body } = await accept(Buffer.concat(chunks).toString("utf8"));
    res.writeHead(status, { "content-type": "application/json" }).end(body);
  });
});

server.listen(0, "127.0.0.1", () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
