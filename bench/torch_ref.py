#!/usr/bin/python3
"""PyTorch/NumPy reference for deepgo's benchmark suite (package bench).

Runs the same workloads as bench.Run and prints the same JSON shape
(impl, version, date, cpu, num_cpu, data, results[name, value, unit,
higher_is_better, steps, seconds, threads, note]).

Workloads (names as in Go):
  sgemm_n{256,512,1024,2048}_t{1,2}  numpy.dot on float32 through OpenBLAS, GFLOPS
  sgemm_n{256,512,1024,2048}_scaling 2-thread over 1-thread numpy.dot GFLOPS, alternating spells
  torch_mm_n{...}_t{1,2}             torch.mm on float32, GFLOPS (extra reference)
  cnn_train_b{32,128}                seed CNN training steps, images/s
  mlp_train_b64                      MLP 784-128-10 training steps, images/s
  lstm_train_b32                     bidirectional LSTM training steps, sequences/s
  transformer_train_b32              Transformer encoder training steps, sequences/s
  cnn_infer_b1                       median latency of one forward pass, us
  cnn_infer_b256                     forward passes on batches of 256, images/s
  peak_rss_models                    VmHWM over the model workloads, MiB

--filter takes the same patterns as deepgo's (torch_mm_* rows match by their
sgemm_* name). Run it with Debian's interpreter, as bench/compare.sh does:
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_ref.py --part torch
and for NumPy/OpenBLAS SGEMM, without the machine's OpenBLAS core overrides:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_ref.py --part numpy
The model workloads use torch.set_num_threads(--threads, default 2); the
SGEMM workloads set both torch's and OpenBLAS's thread counts (through
openblas_set_num_threads) to the count in their name and restore them after.
"""

import argparse
import ctypes
import datetime
import fnmatch
import gc
import gzip
import json
import os
import platform
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

IMAGE_POOL = 1024
PX = 28 * 28


def match_filter(flt, name):
    """Same rules as bench.Options.Filter: comma-separated globs or
    substrings; a leading '!' excludes."""
    incl, excl = [], []
    for p in (flt or "").split(","):
        p = p.strip()
        if not p:
            continue
        (excl if p.startswith("!") else incl).append(p.lstrip("!"))

    def m(p):
        if any(c in p for c in "*?["):
            return fnmatch.fnmatchcase(name, p)
        return p in name

    ok = not incl or any(m(p) for p in incl)
    return ok and not any(m(p) for p in excl)


def openblas():
    """Returns the loaded OpenBLAS library (ctypes) or None."""
    seen = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "openblas" in parts[-1] and parts[-1] not in seen:
                seen.add(parts[-1])
                try:
                    lib = ctypes.CDLL(parts[-1])
                    lib.openblas_set_num_threads
                    return lib
                except (OSError, AttributeError):
                    continue
    return None


def blas_info():
    lib = openblas()
    if lib is None:
        return "no OpenBLAS loaded"
    out = "OpenBLAS"
    try:
        lib.openblas_get_config.restype = ctypes.c_char_p
        out += " " + lib.openblas_get_config().decode()
        lib.openblas_get_corename.restype = ctypes.c_char_p
        out += " core " + lib.openblas_get_corename().decode()
    except AttributeError:
        pass
    return out


class Threads:
    """Sets torch's and OpenBLAS's thread counts for a block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.prev = torch.get_num_threads()
        self.lib = openblas()
        self.prev_blas = self.lib.openblas_get_num_threads() if self.lib else None
        torch.set_num_threads(self.n)
        if self.lib:
            self.lib.openblas_set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.prev)
        if self.lib:
            self.lib.openblas_set_num_threads(self.prev_blas)


def time_steps(opt, step):
    """Warm-up, then Steps steps or until Duration (at least MinSteps);
    returns (steps, seconds)."""
    for _ in range(opt.warmup):
        step()
    n = 0
    t0 = time.perf_counter()
    while True:
        step()
        n += 1
        if opt.steps > 0:
            if n >= opt.steps:
                break
        elif n >= opt.min_steps and time.perf_counter() - t0 >= opt.duration:
            break
    return n, time.perf_counter() - t0


def result(name, value, unit, higher, steps=0, seconds=0.0, threads=0, note=""):
    r = {"name": name, "value": value, "unit": unit, "higher_is_better": higher}
    if steps:
        r["steps"] = steps
    if seconds:
        r["seconds"] = seconds
    if threads:
        r["threads"] = threads
    if note:
        r["note"] = note
    return r


def run_sgemm(opt, n, t, impl):
    rng = np.random.default_rng(opt.seed)
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    with Threads(t):
        if impl == "numpy":
            steps, secs = time_steps(opt, lambda: np.dot(a, b, out=c))
            name = f"sgemm_n{n}_t{t}"
        else:
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            steps, secs = time_steps(opt, lambda: torch.mm(ta, tb, out=tc))
            name = f"torch_mm_n{n}_t{t}"
    return [result(name, 2 * n**3 * steps / secs / 1e9, "GFLOPS", True, steps, secs, t)]


SCALING_PAIRS = 8


def run_sgemm_scaling(opt, n, t):
    """numpy.dot's t-thread over 1-thread GFLOPS for n×n, as deepgo's
    sgemm_n*_scaling: the median ratio of SCALING_PAIRS alternating pairs
    of short spells (each 1/(2·SCALING_PAIRS) of the duration)."""
    rng = np.random.default_rng(opt.seed)
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    spell = argparse.Namespace(**vars(opt))
    spell.duration = opt.duration / (2 * SCALING_PAIRS)
    spell.min_steps = max(1, opt.min_steps // 2)
    spell.warmup = min(opt.warmup, 1)
    if opt.steps > 0:
        spell.steps = max(1, opt.steps // 2)
    ratios, total, secs = [], 0, 0.0
    for _ in range(SCALING_PAIRS):
        rates = []
        for threads in (1, t):
            with Threads(threads):
                steps, sec = time_steps(spell, lambda: np.dot(a, b, out=c))
            rates.append(steps / sec)
            total, secs = total + steps, secs + sec
        ratios.append(rates[1] / rates[0])
    return [result(f"sgemm_n{n}_scaling", statistics.median(ratios), "x", True, total, secs, t,
                   f"{t}-thread over 1-thread GFLOPS, median of {SCALING_PAIRS} alternating pairs of spells")]


def read_idx(path, header):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    return buf[header:]


def load_images(opt):
    if opt.data != "random" and opt.mnist_dir:
        img = os.path.join(opt.mnist_dir, "train-images-idx3-ubyte.gz")
        lab = os.path.join(opt.mnist_dir, "train-labels-idx1-ubyte.gz")
        if os.path.exists(img) and os.path.exists(lab):
            px = np.frombuffer(read_idx(img, 16), dtype=np.uint8)[: IMAGE_POOL * PX]
            lb = np.frombuffer(read_idx(lab, 8), dtype=np.uint8)[:IMAGE_POOL]
            pixels = torch.from_numpy(px.astype(np.float32) / 255).reshape(IMAGE_POOL, 1, 28, 28)
            labels = torch.from_numpy(lb.astype(np.int64))
            return "mnist", pixels, labels
    if opt.data == "mnist":
        sys.exit("torch_ref.py: MNIST files not found; pass --mnist-dir")
    g = torch.Generator().manual_seed(opt.seed + 1000)
    return "random", torch.rand(IMAGE_POOL, 1, 28, 28, generator=g), torch.randint(0, 10, (IMAGE_POOL,), generator=g)


def batches(pixels, labels, b, flat):
    out = []
    for k in range(max(1, min(4, IMAGE_POOL // b))):
        idx = torch.arange(k * b, (k + 1) * b) % IMAGE_POOL
        x = pixels[idx].contiguous()
        if flat:
            x = x.reshape(b, PX).contiguous()
        out.append((x, labels[idx].contiguous()))
    return out


def new_cnn():
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
        tnn.Linear(32 * 13 * 13, 64), tnn.ReLU(), tnn.Linear(64, 10))


def new_mlp():
    return tnn.Sequential(tnn.Linear(784, 128), tnn.ReLU(), tnn.Linear(128, 10))


def run_train(opt, name, mk, b, flat, pixels, labels):
    torch.manual_seed(opt.seed)
    model = mk()
    model.train()
    o = torch.optim.Adam(model.parameters(), lr=1e-3)
    bs = batches(pixels, labels, b, flat)
    i = [0]

    def step():
        x, y = bs[i[0] % len(bs)]
        i[0] += 1
        o.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        o.step()

    steps, secs = time_steps(opt, step)
    return [result(name, steps * b / secs, "images/s", True, steps, secs, opt.threads)]


SEQ_BATCH, SEQ_LEN, SEQ_IN = 32, 64, 64


def run_seq_train(opt, name, model, forward):
    """Training steps (zero grads, forward, mean of the output, backward,
    Adam lr 1e-3) of a sequence model, in sequences/s, as deepgo's."""
    model.train()
    o = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        o.zero_grad()
        loss = forward().mean()
        loss.backward()
        o.step()

    steps, secs = time_steps(opt, step)
    return [result(name, steps * SEQ_BATCH / secs, "seqs/s", True, steps, secs, opt.threads)]


def run_lstm_train(opt):
    """One-layer bidirectional LSTM 64 → 128 per direction, batch first,
    sequence i of length SEQ_LEN − i (packed, like deepgo's lengths)."""
    torch.manual_seed(opt.seed)
    m = tnn.LSTM(SEQ_IN, 128, batch_first=True, bidirectional=True)
    x = torch.rand(SEQ_BATCH, SEQ_LEN, SEQ_IN) * 2 - 1
    lengths = torch.tensor([SEQ_LEN - i for i in range(SEQ_BATCH)])

    def forward():
        packed = tnn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = m(packed)
        out, _ = tnn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=SEQ_LEN)
        return out

    return run_seq_train(opt, "lstm_train_b32", m, forward)


def run_transformer_train(opt):
    """Two-layer Transformer encoder, d 128, 4 heads, feed-forward 512,
    GELU, dropout 0.1, post-norm, batch first, key padding mask for
    lengths 16 + i."""
    torch.manual_seed(opt.seed)
    layer = tnn.TransformerEncoderLayer(128, 4, 512, dropout=0.1, activation="gelu", batch_first=True)
    m = tnn.TransformerEncoder(layer, 2)
    x = torch.rand(SEQ_BATCH, SEQ_LEN, 128) * 2 - 1
    mask = torch.arange(SEQ_LEN)[None, :] >= torch.tensor([16 + i for i in range(SEQ_BATCH)])[:, None]
    return run_seq_train(opt, "transformer_train_b32", m, lambda: m(x, src_key_padding_mask=mask))


def eval_cnn(opt):
    torch.manual_seed(opt.seed)
    m = new_cnn()
    m.eval()
    return m


def run_infer_latency(opt, pixels, labels):
    model = eval_cnn(opt)
    bs = batches(pixels, labels, 1, False)
    lat = []
    i = [0]

    def step():
        x = bs[i[0] % len(bs)][0]
        i[0] += 1
        t0 = time.perf_counter_ns()
        model(x)
        if i[0] > opt.warmup:
            lat.append((time.perf_counter_ns() - t0) / 1e3)

    with torch.no_grad():
        steps, secs = time_steps(opt, step)
    return [result("cnn_infer_b1", statistics.median(lat), "us", False, steps, secs, opt.threads,
                   "median of per-call latencies")]


def run_infer_throughput(opt, b, pixels, labels):
    model = eval_cnn(opt)
    bs = batches(pixels, labels, b, False)
    i = [0]

    def step():
        model(bs[i[0] % len(bs)][0])
        i[0] += 1

    with torch.no_grad():
        steps, secs = time_steps(opt, step)
    return [result(f"cnn_infer_b{b}", steps * b / secs, "images/s", True, steps, secs, opt.threads)]


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM reset (clear_refs) after loading data, before the model workloads"
    except OSError as e:
        return f"VmHWM could not be reset ({e}): peak of the whole process"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--filter", default="", help="comma-separated globs or substrings; '!' excludes")
    ap.add_argument("--duration", type=float, default=2.0, help="timed seconds per workload")
    ap.add_argument("--steps", type=int, default=0, help="fixed timed steps per workload (overrides --duration)")
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the model workloads")
    ap.add_argument("--data", default="auto", choices=["auto", "mnist", "random"])
    ap.add_argument("--mnist-dir", default="", help="directory with the MNIST .gz files")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--part", default="all", choices=["all", "numpy", "torch"],
                    help="numpy: only the NumPy/OpenBLAS SGEMM workloads; torch: all others")
    ap.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    opt = ap.parse_args()

    sizes, tcounts = [256, 512, 1024, 2048], [1, 2]
    work = []
    for impl, prefix in (("numpy", "sgemm"), ("torch", "torch_mm")):
        for t in tcounts:
            for n in sizes:
                work.append((f"{prefix}_n{n}_t{t}", False,
                             lambda impl=impl, n=n, t=t: run_sgemm(opt, n, t, impl)))
    for n in sizes:
        work.append((f"sgemm_n{n}_scaling", False, lambda n=n: run_sgemm_scaling(opt, n, max(tcounts))))
    work += [
        ("cnn_train_b32", True, lambda: run_train(opt, "cnn_train_b32", new_cnn, 32, False, *data[1:])),
        ("cnn_train_b128", True, lambda: run_train(opt, "cnn_train_b128", new_cnn, 128, False, *data[1:])),
        ("mlp_train_b64", True, lambda: run_train(opt, "mlp_train_b64", new_mlp, 64, True, *data[1:])),
        ("lstm_train_b32", False, lambda: run_lstm_train(opt)),
        ("transformer_train_b32", False, lambda: run_transformer_train(opt)),
        ("cnn_infer_b1", True, lambda: run_infer_latency(opt, *data[1:])),
        ("cnn_infer_b256", True, lambda: run_infer_throughput(opt, 256, *data[1:])),
    ]
    # torch_mm rows answer to the filter by the deepgo name they compare with.
    work = [w for w in work
            if match_filter(opt.filter, w[0].replace("torch_mm_", "sgemm_"))
            and (opt.part == "all" or (opt.part == "numpy") == w[0].startswith("sgemm_"))]
    if not work:
        sys.exit(f"torch_ref.py: filter {opt.filter!r} selects no workload")

    res = {
        "impl": "pytorch",
        "version": f"torch {torch.__version__}, numpy {np.__version__}, {blas_info()}, python {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_model(),
        "num_cpu": os.cpu_count(),
        "results": [],
    }
    torch.set_num_threads(opt.threads)
    # As deepgo: the workloads without the MNIST models first, so that
    # peak_rss_models covers the model workloads only.
    work.sort(key=lambda w: w[1])
    data = None
    rss_note = None
    for name, model, fn in work:
        if model and data is None:
            data = load_images(opt)
            res["data"] = data[0]
            gc.collect()
            rss_note = reset_peak_rss()
        rs = fn()
        res["results"] += rs
        for r in rs:
            print(f"{r['name']:<22} {r['value']:12.2f} {r['unit']}", file=sys.stderr)
    if data is not None:
        hwm = peak_rss()
        if hwm is not None:
            res["results"].append(result("peak_rss_models", hwm / (1 << 20), "MiB", False, note=rss_note))
    if opt.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['impl']} {res['version']}, {res['cpu']}, {res['num_cpu']} CPUs, data: {res.get('data', '')}")
        for r in res["results"]:
            print(f"{r['name']:<22} {r['value']:12.2f} {r['unit']}")


if __name__ == "__main__":
    main()
