// Peer test for deepgo's gRPC inference server: an @grpc/grpc-js client that
// loads serve/pb/oip.proto with @grpc/proto-loader, calls every RPC of
// inference.GRPCInferenceService and prints one JSON object with the results
// on stdout. serve/grpc_test.go starts the server and checks the output.
//
// Usage: node client.js HOST:PORT PROTO_FILE CASE_JSON
//
// CASE_JSON names the models, their input and output names, and carries
// the input data:
//   {"model": "mlp", "input": "features", "output": "logits",
//    "rows": 3, "cols": 8, "data": [...float32...],
//    "int_model": "emb", "int_input": "ids", "int_rows": 2, "int_cols": 4,
//    "ids": [...int64...]}
// Bytes fields (raw_output_contents) are printed as base64 strings, 64-bit
// integers as decimal strings; a failed call prints {"code", "details"}.
'use strict';

const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

async function main() {
  const [addr, protoPath, casePath] = process.argv.slice(2);
  if (!addr || !protoPath || !casePath) {
    throw new Error('usage: node client.js HOST:PORT PROTO_FILE CASE_JSON');
  }
  const tc = JSON.parse(fs.readFileSync(casePath, 'utf8'));
  const def = protoLoader.loadSync(protoPath, {
    keepCase: true, longs: String, enums: String, bytes: String, defaults: true, oneofs: true,
  });
  const inference = grpc.loadPackageDefinition(def).inference;
  const client = new inference.GRPCInferenceService(addr, grpc.credentials.createInsecure());

  const call = (method, req) => new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 30000 }, (err, resp) => {
      if (err) {
        resolve({ error: { code: err.code, details: err.details } });
      } else {
        resolve({ response: resp });
      }
    });
  });

  const f32 = Float32Array.from(tc.data);
  const raw = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
  const ids = BigInt64Array.from(tc.ids.map((v) => BigInt(v)));
  const rawIds = Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);
  const input = { name: tc.input, datatype: 'FP32', shape: [tc.rows, tc.cols] };

  const out = {};
  out.serverLive = await call('ServerLive', {});
  out.serverReady = await call('ServerReady', {});
  out.serverMetadata = await call('ServerMetadata', {});
  out.modelMetadata = await call('ModelMetadata', { name: tc.model });
  out.modelReady = await call('ModelReady', { name: tc.model });
  out.inferRaw = await call('ModelInfer', {
    model_name: tc.model,
    id: 'node-raw',
    parameters: {
      priority: { int64_param: '1' },
      note: { string_param: 'from node' },
      ratio: { double_param: 0.5 },
      big: { uint64_param: '7' },
      flag: { bool_param: true },
    },
    inputs: [input],
    raw_input_contents: [raw],
  });
  out.inferTyped = await call('ModelInfer', {
    model_name: tc.model,
    id: 'node-typed',
    inputs: [{ ...input, contents: { fp32_contents: tc.data } }],
    outputs: [{ name: tc.output }],
  });
  out.inferInt64 = await call('ModelInfer', {
    model_name: tc.int_model,
    inputs: [{ name: tc.int_input, datatype: 'INT64', shape: [tc.int_rows, tc.int_cols], contents: { int64_contents: tc.ids.map(String) } }],
  });
  out.inferInt64Raw = await call('ModelInfer', {
    model_name: tc.int_model,
    inputs: [{ name: tc.int_input, datatype: 'INT64', shape: [tc.int_rows, tc.int_cols] }],
    raw_input_contents: [rawIds],
  });
  out.inferUnknownModel = await call('ModelInfer', { model_name: 'no-such-model', inputs: [input], raw_input_contents: [raw] });
  out.modelReadyUnknown = await call('ModelReady', { name: 'no-such-model' });
  out.modelMetadataUnknown = await call('ModelMetadata', { name: 'no-such-model' });
  out.inferBadShape = await call('ModelInfer', {
    model_name: tc.model,
    inputs: [{ ...input, shape: [tc.rows + 1, tc.cols] }],
    raw_input_contents: [raw],
  });
  client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`client.js: ${err.stack || err}\n`);
  process.exit(1);
});
