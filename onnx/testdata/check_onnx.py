"""Checks ONNX files with onnx.checker.check_model(full_check=True).

Usage: /usr/bin/python3 check_onnx.py FILE.onnx...
Prints "ok FILE" per accepted file and "FAIL FILE: reason" otherwise; exits 1
if any file fails, 2 when the onnx module is missing.
"""
import sys

try:
    import onnx
except ImportError:
    print("onnx module missing: apt-get install python3-onnx", file=sys.stderr)
    sys.exit(2)

failed = False
for path in sys.argv[1:]:
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        print("ok " + path)
    except Exception as e:  # report every file, then fail
        failed = True
        print("FAIL %s: %s" % (path, str(e).replace("\n", " ")))
sys.exit(1 if failed else 0)
