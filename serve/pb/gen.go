// Package pb holds the Go message types and gRPC stubs of the Open Inference
// Protocol v2 service (package inference, service GRPCInferenceService),
// generated from oip.proto and committed.
//
// The generated files come from these tools; install them and run
// `go generate ./serve/pb` after editing oip.proto:
//
//	protoc              3.21.12 (Debian package protobuf-compiler)
//	protoc-gen-go       v1.36.12 (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12)
//	protoc-gen-go-grpc  v1.6.2   (go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2)
package pb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative oip.proto
