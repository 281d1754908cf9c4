#!/usr/bin/python3
"""Independent reader of TensorBoard event files for deepgo's tests.

Usage: read_events.py EVENT_FILE

Compiles event.proto (next to this script) with protoc into a temporary
directory, reads EVENT_FILE's TFRecord framing, checks the masked CRC-32C of
every length and every record with the crc32c module, parses every record as
an Event (rejecting unknown fields) and prints one JSON object:

  {"records": N, "file_version": "...", "writer": "...",
   "scalars":    [{"tag", "step", "wall_time", "value"}],
   "histograms": [{"tag", "step", "min", "max", "num", "sum", "sum_squares",
                   "bucket_limit", "bucket"}],
   "images":     [{"tag", "step", "height", "width", "colorspace",
                   "png_width", "png_height", "png_bytes"}]}

Non-finite floats are written as the strings "NaN", "Infinity", "-Infinity".
Any framing, CRC or parse error exits with status 1 and a message on stderr.
Needs Debian's python3-crc32c, python3-protobuf and protobuf-compiler.
"""

import importlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import crc32c


def masked_crc(data):
    c = crc32c.crc32c(data) & 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def num(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def fail(msg):
    print("read_events.py: " + msg, file=sys.stderr)
    sys.exit(1)


def compile_proto(tmp):
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["protoc", "-I", here, "--python_out", tmp, os.path.join(here, "event.proto")], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("event_pb2")


def records(data):
    off = 0
    while off < len(data):
        if len(data) - off < 12:
            fail("offset %d: truncated header (%d bytes)" % (off, len(data) - off))
        length_bytes = data[off:off + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (lcrc,) = struct.unpack("<I", data[off + 8:off + 12])
        if lcrc != masked_crc(length_bytes):
            fail("offset %d: length CRC mismatch" % off)
        end = off + 12 + length + 4
        if end > len(data):
            fail("offset %d: truncated record (length %d)" % (off, length))
        rec = data[off + 12:off + 12 + length]
        (dcrc,) = struct.unpack("<I", data[end - 4:end])
        if dcrc != masked_crc(rec):
            fail("offset %d: data CRC mismatch" % off)
        yield off, rec
        off = end


def png_size(b):
    if b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
        fail("image is not a PNG")
    w, h = struct.unpack(">II", b[16:24])
    return w, h


def check_unknown(msg, where):
    try:
        unknown = msg.UnknownFields()
    except (AttributeError, NotImplementedError):
        return
    if len(unknown):
        fail("%s: %d unknown fields" % (where, len(unknown)))
    for fd, val in msg.ListFields():
        if fd.message_type is None:
            continue
        for m in (val if fd.label == fd.LABEL_REPEATED else [val]):
            check_unknown(m, where + "." + fd.name)


def main():
    if len(sys.argv) != 2:
        fail("usage: read_events.py EVENT_FILE")
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        pb = compile_proto(tmp)
        out = {"records": 0, "file_version": None, "writer": None,
               "scalars": [], "histograms": [], "images": []}
        for i, (off, rec) in enumerate(records(data)):
            ev = pb.Event()
            try:
                ev.ParseFromString(rec)
            except Exception as e:  # DecodeError and friends
                fail("offset %d: cannot parse Event: %s" % (off, e))
            check_unknown(ev, "record %d" % i)
            out["records"] += 1
            what = ev.WhichOneof("what")
            if i == 0:
                if what != "file_version":
                    fail("first record is not a file_version event")
                out["file_version"] = ev.file_version
                out["writer"] = ev.source_metadata.writer
                continue
            if what != "summary":
                fail("record %d: event holds %r, want summary" % (i, what))
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                base = {"tag": v.tag, "step": ev.step, "wall_time": ev.wall_time}
                if kind == "simple_value":
                    base["value"] = num(v.simple_value)
                    out["scalars"].append(base)
                elif kind == "histo":
                    h = v.histo
                    if len(h.bucket) != len(h.bucket_limit):
                        fail("record %d: %d buckets, %d limits" % (i, len(h.bucket), len(h.bucket_limit)))
                    base.update({"min": num(h.min), "max": num(h.max), "num": h.num, "sum": num(h.sum),
                                 "sum_squares": num(h.sum_squares),
                                 "bucket_limit": [num(x) for x in h.bucket_limit],
                                 "bucket": list(h.bucket)})
                    out["histograms"].append(base)
                elif kind == "image":
                    im = v.image
                    pw, ph = png_size(im.encoded_image_string)
                    base.update({"height": im.height, "width": im.width, "colorspace": im.colorspace,
                                 "png_width": pw, "png_height": ph, "png_bytes": len(im.encoded_image_string)})
                    out["images"].append(base)
                else:
                    fail("record %d: value %r holds %r" % (i, v.tag, kind))
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
