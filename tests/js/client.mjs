// Calls the app's /predict endpoint with @gradio/client, as an embedding page
// would, and prints one JSON line per call: {ok, label, overlay_url, details}
// (label null for a refused image, details.refusal saying why) or
// {ok: false, message} when the call itself failed.
// Usage: node client.mjs URL FILE [FILE ...]
import { readFileSync } from "node:fs";
import { Client, handle_file } from "@gradio/client";

const [url, ...files] = process.argv.slice(2);
const app = await Client.connect(url);
for (const file of files) {
  const started = performance.now();
  try {
    const blob = new Blob([readFileSync(file)]);
    const result = await app.predict("/predict", [handle_file(blob), "decided class"]);
    const [label, overlay, details] = result.data;
    console.log(JSON.stringify({ ok: true, ms: performance.now() - started, label: label?.label ?? null,
                                 overlay_url: overlay?.url ?? null, details }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, ms: performance.now() - started, message: e?.message ?? String(e) }));
  }
}
process.exit(0);
