package tensor

// Stubs owned by the elementwise/reduction/activation work. Each is replaced by
// a real implementation in elementwise.go, reduce.go, activation.go, random.go.

// Neg returns -a.
func Neg(a *Tensor) *Tensor { panic("not implemented") }

// Exp returns e^a.
func Exp(a *Tensor) *Tensor { panic("not implemented") }

// Log returns the natural logarithm of a.
func Log(a *Tensor) *Tensor { panic("not implemented") }

// Sqrt returns the square root of a.
func Sqrt(a *Tensor) *Tensor { panic("not implemented") }

// Pow returns a raised to the scalar power p.
func Pow(a *Tensor, p float32) *Tensor { panic("not implemented") }

// Abs returns |a|.
func Abs(a *Tensor) *Tensor { panic("not implemented") }

// Clamp limits a to [lo, hi].
func Clamp(a *Tensor, lo, hi float32) *Tensor { panic("not implemented") }

// Maximum returns the elementwise maximum of a and b with broadcasting.
func Maximum(a, b *Tensor) *Tensor { panic("not implemented") }

// Minimum returns the elementwise minimum of a and b with broadcasting.
func Minimum(a, b *Tensor) *Tensor { panic("not implemented") }

// AddScalar returns a+s.
func AddScalar(a *Tensor, s float32) *Tensor { panic("not implemented") }

// MulScalar returns a*s.
func MulScalar(a *Tensor, s float32) *Tensor { panic("not implemented") }

// Sum returns the sum of all elements as a 0-d tensor.
func Sum(a *Tensor) *Tensor { panic("not implemented") }

// SumAxes sums over the given axes (all if none), keeping them as size 1 if keepdim.
func SumAxes(a *Tensor, keepdim bool, axes ...int) *Tensor { panic("not implemented") }

// Mean returns the mean of all elements as a 0-d tensor.
func Mean(a *Tensor) *Tensor { panic("not implemented") }

// MeanAxes averages over the given axes (all if none).
func MeanAxes(a *Tensor, keepdim bool, axes ...int) *Tensor { panic("not implemented") }

// Var returns the variance over the given axes (all if none); unbiased divides by N-1.
func Var(a *Tensor, unbiased, keepdim bool, axes ...int) *Tensor { panic("not implemented") }

// Max returns the maximum along axis (gradient flows to the first maximal element).
func Max(a *Tensor, axis int, keepdim bool) *Tensor { panic("not implemented") }

// Min returns the minimum along axis (gradient flows to the first minimal element).
func Min(a *Tensor, axis int, keepdim bool) *Tensor { panic("not implemented") }

// ArgMax returns the int64 index of the first maximum along axis.
func ArgMax(a *Tensor, axis int, keepdim bool) *Tensor { panic("not implemented") }

// ArgMin returns the int64 index of the first minimum along axis.
func ArgMin(a *Tensor, axis int, keepdim bool) *Tensor { panic("not implemented") }

// ReLU returns max(a, 0).
func ReLU(a *Tensor) *Tensor { panic("not implemented") }

// LeakyReLU returns a where a > 0 and slope*a elsewhere.
func LeakyReLU(a *Tensor, slope float32) *Tensor { panic("not implemented") }

// Sigmoid returns 1/(1+e^-a).
func Sigmoid(a *Tensor) *Tensor { panic("not implemented") }

// Tanh returns tanh(a).
func Tanh(a *Tensor) *Tensor { panic("not implemented") }

// GELU returns a*Φ(a) (exact, erf-based, as PyTorch's default).
func GELU(a *Tensor) *Tensor { panic("not implemented") }

// GELUTanh returns the tanh approximation of GELU (PyTorch approximate="tanh").
func GELUTanh(a *Tensor) *Tensor { panic("not implemented") }

// Softmax normalises exp(a) along axis.
func Softmax(a *Tensor, axis int) *Tensor { panic("not implemented") }

// LogSoftmax returns log(Softmax(a, axis)) computed stably.
func LogSoftmax(a *Tensor, axis int) *Tensor { panic("not implemented") }

// RNG is a seeded, deterministic random source for initialisation, shuffling and dropout.
type RNG struct{}

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) *RNG { panic("not implemented") }

// Float64 returns a uniform value in [0, 1).
func (r *RNG) Float64() float64 { panic("not implemented") }

// NormFloat64 returns a standard normal value.
func (r *RNG) NormFloat64() float64 { panic("not implemented") }

// IntN returns a uniform int in [0, n).
func (r *RNG) IntN(n int) int { panic("not implemented") }

// Perm returns a random permutation of [0, n).
func (r *RNG) Perm(n int) []int { panic("not implemented") }

// RandN returns a tensor of standard normal values.
func RandN(r *RNG, shape ...int) *Tensor { panic("not implemented") }

// RandU returns a tensor of values uniform in [lo, hi).
func RandU(r *RNG, lo, hi float32, shape ...int) *Tensor { panic("not implemented") }

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p)
// when training; otherwise it returns a unchanged.
func Dropout(a *Tensor, p float32, training bool, r *RNG) *Tensor { panic("not implemented") }
