// Runs ONNX models in onnxruntime-node for deepgo's onnx export tests.
//
// Usage: node run.js CASES.json
// CASES.json: [{"model": "PATH.onnx", "inputs": {"NAME": {"dtype": "float32"|"int64",
//               "shape": [...], "data": [...]}}}, ...]
// Prints to stdout a JSON array with, per case, {"outputs": {"NAME": {"dims": [...],
// "data": [...]}}} or {"error": "message"}.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function runCase(c) {
  const session = await ort.InferenceSession.create(c.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const feeds = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    const data = t.dtype === 'int64'
      ? BigInt64Array.from(t.data.map((v) => BigInt(v)))
      : Float32Array.from(t.data);
    feeds[name] = new ort.Tensor(t.dtype, data, t.shape);
  }
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = { dims: Array.from(t.dims), data: Array.from(t.data, Number) };
  }
  return { outputs };
}

async function main() {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const out = [];
  for (const c of cases) {
    try {
      out.push(await runCase(c));
    } catch (e) {
      out.push({ error: String(e && e.message ? e.message : e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
