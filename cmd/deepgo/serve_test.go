package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deepgo/deepgo/model"
	"github.com/deepgo/deepgo/nn"
	"github.com/deepgo/deepgo/tensor"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServeCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lin")
	pkg := &model.Package{Name: "lin", Module: nn.NewSequential(nn.NewLinear(tensor.NewRNG(1), 4, 3, true)),
		Signature: model.Signature{
			Inputs:  []model.TensorSpec{{Name: "x", DType: model.DTypeFloat32, Shape: []int{-1, 4}}},
			Outputs: []model.TensorSpec{{Name: "logits", DType: model.DTypeFloat32, Shape: []int{-1, 3}}},
		}}
	if err := model.Save(dir, pkg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--model", "m=" + dir, "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "-1", "--log-format", "json"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`REST on (http://\S+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: stdout %q stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Post(url+"/v2/models/m/infer", "application/json",
		strings.NewReader(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"model_name":"m","model_version":"1"`) {
		t.Fatalf("infer through deepgo serve: %d %s", resp.StatusCode, body)
	}
	cancel() // what SIGTERM does in main
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(stdout.String(), "serving m version 1") || !strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Errorf("stdout %q / stderr %q lack the model line or the JSON request log", stdout.String(), stderr.String())
	}
}

func TestServeCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve"},
		{"serve", "--model", "x", "--http-port", "70000"},
		{"serve", "--model", "x", "--log-format", "xml"},
		{"serve", "--registry", "noalias"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, stderr.String(), exitUsage)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"serve", "--model", t.TempDir(), "--http-port", "0"}, &stdout, &stderr); code != exitError ||
		!strings.Contains(stderr.String(), "model package") {
		t.Errorf("serve of an empty directory: exit %d, %s", code, stderr.String())
	}
}
