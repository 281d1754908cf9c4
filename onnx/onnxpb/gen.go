// Package onnxpb holds the Go types generated from the ONNX IR protobuf schema
// (onnx.proto, ONNX 1.12 as shipped by Debian's python3-onnx): ModelProto,
// GraphProto, NodeProto, TensorProto and friends. Use
// google.golang.org/protobuf/proto to Marshal/Unmarshal them.
//
// Regenerate with `go generate ./onnx/onnxpb/` (needs protoc and
// protoc-gen-go v1.36.12 on PATH).
package onnxpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/deepgo/deepgo/onnx/onnxpb onnx.proto
