package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/deepgo/deepgo/serve/pb"
)

func init() {
	GRPCServe = serveGRPC
}

// grpcMaxSendBytes bounds one gRPC response (the default of grpc-go is
// unlimited on the send side).
const grpcMaxSendBytes = math.MaxInt32

// NewGRPCServer returns a gRPC server answering the Open Inference Protocol
// service inference.GRPCInferenceService from s. It receives messages of
// up to s.Options().MaxBodyBytes, recovers a panic in any call into an
// INTERNAL status (the server stays up), logs every call on s.Logger() and
// maps the Server's errors to status codes: ErrNotFound → NOT_FOUND,
// ErrInvalid → INVALID_ARGUMENT, ErrUnavailable → UNAVAILABLE, context
// deadline → DEADLINE_EXCEEDED, cancellation → CANCELLED, anything else →
// INTERNAL. opts are applied after these defaults and may override them.
// The caller serves it on a listener and stops it.
func NewGRPCServer(s *Server, opts ...grpc.ServerOption) *grpc.Server {
	maxRecv := s.Options().MaxBodyBytes
	if maxRecv > math.MaxInt32 {
		maxRecv = math.MaxInt32
	}
	all := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(maxRecv)),
		grpc.MaxSendMsgSize(grpcMaxSendBytes),
		grpc.ChainUnaryInterceptor(grpcRecoverInterceptor(s)),
	}
	all = append(all, opts...)
	gs := grpc.NewServer(all...)
	pb.RegisterGRPCInferenceServiceServer(gs, &grpcService{s: s})
	return gs
}

// serveGRPC is GRPCServe: it serves s on ln until ctx ends, then stops
// gracefully so that calls in flight finish.
func serveGRPC(ctx context.Context, s *Server, ln net.Listener) error {
	gs := NewGRPCServer(s)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		gs.GracefulStop()
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	}
}

// grpcRecoverInterceptor turns a panic in a handler into an INTERNAL status
// and logs every call with its method, code and duration.
func grpcRecoverInterceptor(s *Server) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("grpc: panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "internal error in %s: %v", info.FullMethod, r)
			}
			code := status.Code(err)
			level := s.log.Debug
			if code == codes.Internal || code == codes.Unknown {
				level = s.log.Error
			}
			level("grpc request", "method", info.FullMethod, "code", code.String(), "duration", time.Since(start))
		}()
		return handler(ctx, req)
	}
}

// grpcError maps an error of the Server to a gRPC status error.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

// grpcService implements pb.GRPCInferenceServiceServer on a Server.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// ServerLive implements the ServerLive RPC.
func (g *grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: g.s.Live()}, nil
}

// ServerReady implements the ServerReady RPC.
func (g *grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

// ModelReady implements the ModelReady RPC; an unknown model or version is
// NOT_FOUND.
func (g *grpcService) ModelReady(_ context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ready, err := g.s.ModelReady(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	return &pb.ModelReadyResponse{Ready: ready}, nil
}

// ServerMetadata implements the ServerMetadata RPC.
func (g *grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	md := g.s.ServerMetadata()
	return &pb.ServerMetadataResponse{Name: md.Name, Version: md.Version, Extensions: md.Extensions}, nil
}

// ModelMetadata implements the ModelMetadata RPC.
func (g *grpcService) ModelMetadata(_ context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	md, err := g.s.ModelMetadata(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	conv := func(ts []TensorMetadata) []*pb.ModelMetadataResponse_TensorMetadata {
		out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(ts))
		for i, t := range ts {
			out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: append([]int64(nil), t.Shape...)}
		}
		return out
	}
	return &pb.ModelMetadataResponse{
		Name:     md.Name,
		Versions: md.Versions,
		Platform: md.Platform,
		Inputs:   conv(md.Inputs),
		Outputs:  conv(md.Outputs),
	}, nil
}

// ModelInfer implements the ModelInfer RPC. Inputs come either all in
// raw_input_contents or each in its typed contents; every output is
// returned in raw_output_contents.
func (g *grpcService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	ir, err := grpcInferRequest(req)
	if err != nil {
		return nil, grpcError(err)
	}
	resp, err := g.s.Infer(ctx, ir)
	if err != nil {
		return nil, grpcError(err)
	}
	out, err := grpcInferResponse(&resp)
	if err != nil {
		return nil, grpcError(err)
	}
	return out, nil
}

// grpcInferRequest converts a ModelInferRequest to the Server's form.
func grpcInferRequest(req *pb.ModelInferRequest) (InferRequest, error) {
	ir := InferRequest{Model: req.GetModelName(), Version: req.GetModelVersion(), ID: req.GetId()}
	var err error
	if ir.Parameters, err = grpcParams("request", req.GetParameters()); err != nil {
		return ir, err
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return ir, errorf(ErrInvalid, "raw_input_contents has %d entries for %d inputs; it must have one per input", len(raw), len(req.GetInputs()))
	}
	ir.Inputs = make([]Tensor, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		t := Tensor{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape()}
		for _, d := range t.Shape {
			if d < 0 {
				return ir, errorf(ErrInvalid, "input %q: negative dimension in shape %v", t.Name, t.Shape)
			}
		}
		if t.Parameters, err = grpcParams(fmt.Sprintf("input %q", t.Name), in.GetParameters()); err != nil {
			return ir, err
		}
		if len(raw) > 0 {
			if grpcHasContents(in.GetContents()) {
				return ir, errorf(ErrInvalid, "input %q has both contents and raw_input_contents; use one", t.Name)
			}
			t.Raw = raw[i]
			if t.Raw == nil {
				t.Raw = []byte{}
			}
		} else if err := grpcTypedContents(&t, in.GetContents()); err != nil {
			return ir, err
		}
		ir.Inputs[i] = t
	}
	ir.Outputs = make([]RequestedOutput, len(req.GetOutputs()))
	for i, o := range req.GetOutputs() {
		ro := RequestedOutput{Name: o.GetName(), Binary: true}
		params, err := grpcParams(fmt.Sprintf("output %q", o.GetName()), o.GetParameters())
		if err != nil {
			return ir, err
		}
		if v, ok := params["classification"]; ok {
			n, ok := v.(int64)
			if !ok || n < 0 || n > math.MaxInt32 {
				return ir, errorf(ErrInvalid, "output %q: parameter classification must be a non-negative integer, got %v", o.GetName(), v)
			}
			ro.Classification = int(n)
		}
		ir.Outputs[i] = ro
	}
	return ir, nil
}

// grpcParams converts protocol parameters to the Server's values (bool,
// int64, float64 or string); a uint64 above MaxInt64 is invalid.
func grpcParams(where string, ps map[string]*pb.InferParameter) (map[string]any, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(ps))
	for k, p := range ps {
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = v.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = v.Int64Param
		case *pb.InferParameter_StringParam:
			out[k] = v.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = v.DoubleParam
		case *pb.InferParameter_Uint64Param:
			if v.Uint64Param > math.MaxInt64 {
				return nil, errorf(ErrInvalid, "%s parameter %q: uint64 value %d is out of range", where, k, v.Uint64Param)
			}
			out[k] = int64(v.Uint64Param)
		default:
			return nil, errorf(ErrInvalid, "%s parameter %q has no value", where, k)
		}
	}
	return out, nil
}

// grpcHasContents reports whether any typed contents field is set.
func grpcHasContents(c *pb.InferTensorContents) bool {
	return c != nil && (len(c.BoolContents) > 0 || len(c.IntContents) > 0 || len(c.Int64Contents) > 0 ||
		len(c.UintContents) > 0 || len(c.Uint64Contents) > 0 || len(c.Fp32Contents) > 0 ||
		len(c.Fp64Contents) > 0 || len(c.BytesContents) > 0)
}

// grpcTypedContents fills t's data from the contents field that matches its
// datatype; any other contents field being set is an error.
func grpcTypedContents(t *Tensor, c *pb.InferTensorContents) error {
	if c == nil {
		c = &pb.InferTensorContents{}
	}
	field := ""
	switch t.Datatype {
	case TypeFP32:
		field, t.FP32 = "fp32_contents", grpcNonNil(c.Fp32Contents)
	case TypeFP64:
		field, t.FP64 = "fp64_contents", grpcNonNil(c.Fp64Contents)
	case TypeInt8, TypeInt16, TypeInt32:
		field, t.Ints = "int_contents", grpcWiden(c.IntContents)
	case TypeInt64:
		field, t.Ints = "int64_contents", grpcNonNil(c.Int64Contents)
	case TypeUint8, TypeUint16, TypeUint32:
		field, t.Ints = "uint_contents", grpcWiden(c.UintContents)
	case TypeUint64:
		// Raw keeps values above MaxInt64 exact.
		field, t.Raw = "uint64_contents", make([]byte, 8*len(c.Uint64Contents))
		for i, v := range c.Uint64Contents {
			binary.LittleEndian.PutUint64(t.Raw[8*i:], v)
		}
	case TypeBool:
		field, t.Ints = "bool_contents", make([]int64, len(c.BoolContents))
		for i, v := range c.BoolContents {
			if v {
				t.Ints[i] = 1
			}
		}
	case TypeBytes:
		field, t.Bytes = "bytes_contents", grpcNonNil(c.BytesContents)
	case TypeFP16, TypeBF16:
		return errorf(ErrInvalid, "input %q: datatype %s travels only in raw_input_contents", t.Name, t.Datatype)
	default:
		return errorf(ErrInvalid, "input %q: unknown datatype %q", t.Name, t.Datatype)
	}
	others := map[string]int{
		"bool_contents": len(c.BoolContents), "int_contents": len(c.IntContents),
		"int64_contents": len(c.Int64Contents), "uint_contents": len(c.UintContents),
		"uint64_contents": len(c.Uint64Contents), "fp32_contents": len(c.Fp32Contents),
		"fp64_contents": len(c.Fp64Contents), "bytes_contents": len(c.BytesContents),
	}
	for name, n := range others {
		if name != field && n > 0 {
			return errorf(ErrInvalid, "input %q: datatype %s takes its data in %s, not %s", t.Name, t.Datatype, field, name)
		}
	}
	return nil
}

// grpcNonNil returns s, or an empty slice for nil, so that the tensor's data
// field counts as set.
func grpcNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// grpcWiden converts 32-bit integers to int64.
func grpcWiden[T int32 | uint32](s []T) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// grpcInferResponse converts the Server's answer to a ModelInferResponse
// with every output in raw_output_contents.
func grpcInferResponse(r *InferResponse) (*pb.ModelInferResponse, error) {
	out := &pb.ModelInferResponse{
		ModelName:         r.Model,
		ModelVersion:      r.Version,
		Id:                r.ID,
		Outputs:           make([]*pb.ModelInferResponse_InferOutputTensor, len(r.Outputs)),
		RawOutputContents: make([][]byte, len(r.Outputs)),
	}
	for i := range r.Outputs {
		t := &r.Outputs[i]
		params, err := grpcOutParams(t.Parameters)
		if err != nil {
			return nil, err
		}
		out.Outputs[i] = &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape, Parameters: params}
		out.RawOutputContents[i] = t.RawBytes()
	}
	return out, nil
}

// grpcOutParams converts output parameters to protocol parameters, leaving
// out those of the REST binary extension.
func grpcOutParams(ps map[string]any) (map[string]*pb.InferParameter, error) {
	var out map[string]*pb.InferParameter
	for k, v := range ps {
		if k == "binary_data" || k == "binary_data_size" {
			continue
		}
		var p *pb.InferParameter
		switch v := v.(type) {
		case bool:
			p = &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: v}}
		case int64:
			p = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: v}}
		case int:
			p = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: int64(v)}}
		case float64:
			p = &pb.InferParameter{ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: v}}
		case string:
			p = &pb.InferParameter{ParameterChoice: &pb.InferParameter_StringParam{StringParam: v}}
		default:
			return nil, fmt.Errorf("serve: output parameter %q has unsupported type %T", k, v)
		}
		if out == nil {
			out = map[string]*pb.InferParameter{}
		}
		out[k] = p
	}
	return out, nil
}
