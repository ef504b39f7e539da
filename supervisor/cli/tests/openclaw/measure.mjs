// Sequential latency of tool calls, interleaved so both sides see the same machine:
//   node measure.mjs GATEWAY_URL GATEWAY_TOKEN OUTPOST_URL OUTPOST_TOKEN ROUNDS
// Prints one JSON line: the median, p90 and p99 of each path, in milliseconds.

const [gateway, gatewayToken, outpost, outpostToken, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText ?? 300);
const warmup = 50;
const args = { text: 'the quick brown fox jumps over the lazy dog' };

const paths = {
  // OpenClaw -> the in-process plugin.
  inProcess: () => post(`${gateway}/tools/invoke`, gatewayToken, { tool: 'word_count_in_process', args }, (r) => r.ok),
  // OpenClaw -> bridge -> outpost serve -> the Rust plugin.
  bridged: () => post(`${gateway}/tools/invoke`, gatewayToken, { tool: 'word_count', args }, (r) => r.ok),
  // outpost serve -> the Rust plugin, without OpenClaw (what the bridge's hop costs).
  outpostApi: () => post(`${outpost}/`, outpostToken, { jsonrpc: '2.0', id: 1, method: 'call', params: { kind: 'tool', name: 'word_count', args } }, (r) => r.result),
};

async function post(url, token, body, ok) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!ok(answer)) throw new Error(`${url}: ${JSON.stringify(answer)}`);
}

const samples = Object.fromEntries(Object.keys(paths).map((name) => [name, []]));
for (let i = 0; i < warmup + rounds; i += 1) {
  for (const [name, call] of Object.entries(paths)) {
    const start = process.hrtime.bigint();
    await call();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (i >= warmup) samples[name].push(ms);
  }
}
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const report = { rounds };
for (const [name, values] of Object.entries(samples)) {
  const sorted = values.toSorted((a, b) => a - b);
  report[name] = { median: +quantile(sorted, 0.5).toFixed(3), p90: +quantile(sorted, 0.9).toFixed(3), p99: +quantile(sorted, 0.99).toFixed(3) };
}
report.addedMedianMs = +(report.bridged.median - report.inProcess.median).toFixed(3);
console.log(JSON.stringify(report));
