// ONNX Runtime's latency and outputs on one model, the baseline of the zoo
// table (bench/zoo.sh), measured as build/bench/esb_zoo_bench measures ours:
//
//   node bench/ort_run.mjs --model M.onnx --input X.npy --out DIR
//        [--name ort] [--batches 1,8] [--threads 2] [--warmup 3]
//        [--min-runs 7] [--min-seconds 2]
//
// CPU execution provider, intraOpNumThreads --threads, interOpNumThreads 1,
// graphOptimizationLevel 'all'. For each batch B the input is the first B
// items of X (cycled when X holds fewer); the first run is timed on its
// own, then --warmup more runs, then runs timed one at a time until there
// are at least --min-runs and --min-seconds have passed.
//
// Stdout: one JSON object per line, {"engine":NAME,"batch":B,"runs":N,
// "median_ms":..,"min_ms":..,"first_ms":..}, or {"engine":NAME,"error":".."}
// when the session cannot be created or run. The first output at the
// largest batch goes to DIR/NAME_bB.npy.
//
// onnxruntime-node is resolved from build/bench/ort (bench/zoo.sh installs
// it there) or from NODE_PATH; it is a benchmark peer, not a dependency of
// ESB.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const args = {
    name: 'ort', batches: '1,8', threads: '2', warmup: '3',
    'min-runs': '7', 'min-seconds': '2',
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument '${argv[i]}'`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const required of ['model', 'input', 'out']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

function loadOrt() {
  const roots = [path.join(here, '..', 'build', 'bench', 'ort', 'package.json'),
    path.join(process.cwd(), 'build', 'bench', 'ort', 'package.json')];
  for (const root of roots) {
    try {
      return createRequire(root)('onnxruntime-node');
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  return createRequire(import.meta.url)('onnxruntime-node');
}

// A little-endian float32 C-order .npy array (format 1.0, 2.0 or 3.0).
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new Error(`${file}: not an .npy file`);
  }
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  if (!/'descr':\s*'<f4'/.test(header) ||
      !/'fortran_order':\s*False/.test(header)) {
    throw new Error(`${file}: not a float32 C-order array: ${header}`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1]
      .split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const offset = start + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(buf.subarray(offset, offset + 4 * count));
  return { shape, data };
}

function writeNpy(file, shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
    body]));
}

function batchOf(x, batch) {
  const items = x.shape[0];
  const perItem = x.data.length / items;
  const data = new Float32Array(batch * perItem);
  for (let i = 0; i < batch; ++i) {
    data.set(x.data.subarray((i % items) * perItem, (i % items + 1) * perItem),
        i * perItem);
  }
  return { shape: [batch, ...x.shape.slice(1)], data };
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const name = args.name;
  const batches = args.batches.split(',').map(Number);
  const x = readNpy(args.input);
  let session;
  try {
    session = await ort.InferenceSession.create(args.model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: Number(args.threads),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    print({ engine: name, error: String(e.message || e) });
    return;
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  for (const [index, batch] of batches.entries()) {
    const b = batchOf(x, batch);
    const feeds = { [inputName]: new ort.Tensor('float32', b.data, b.shape) };
    let first;
    const t0 = performance.now();
    try {
      first = (await session.run(feeds))[outputName];
    } catch (e) {
      print({ engine: name, error: String(e.message || e) });
      return;
    }
    const firstMs = performance.now() - t0;
    for (let i = 0; i < Number(args.warmup); ++i) await session.run(feeds);
    const times = [];
    const start = performance.now();
    while (times.length < Number(args['min-runs']) ||
           performance.now() - start < 1000 * Number(args['min-seconds'])) {
      const r0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - r0);
    }
    times.sort((p, q) => p - q);
    const n = times.length;
    const median = n % 2 ? times[(n - 1) / 2] :
      (times[n / 2 - 1] + times[n / 2]) / 2;
    print({
      engine: name, batch, runs: n, median_ms: median, min_ms: times[0],
      first_ms: firstMs,
    });
    if (index === batches.length - 1) {
      writeNpy(path.join(args.out, `${name}_b${batch}.npy`), first.dims,
          first.data);
    }
  }
  await session.release();
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e.message || e}\n`);
  process.exit(2);
});
