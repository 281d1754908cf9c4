package serve

// DecodeInferRequestReference is DecodeInferRequest with encoding/json only
// (no fast parser), the reference the fast path is checked against.
func DecodeInferRequestReference(body []byte, headerLen int64) (InferRequest, bool, error) {
	return decodeInferRequest(body, headerLen, false)
}

// FastRequestAccepts reports whether the reflection-free parser handles
// the JSON header js (else DecodeInferRequest falls back to encoding/json).
func FastRequestAccepts(js []byte) bool {
	_, ok := fastRequest(js)
	return ok
}

// TextElements is Tensor.textElements: the n texts of a BYTES tensor.
func TextElements(t *Tensor, n int) ([][]byte, error) { return t.textElements(n) }
