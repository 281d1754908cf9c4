package torchimport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file is a small unpickler for the subset of the pickle format that
// torch.save writes for state dicts (protocols 2 to 5, binary opcodes only).
// It never calls arbitrary code: GLOBAL/STACK_GLOBAL resolve only the names
// listed in resolveGlobal, and everything else is an error naming the global.
// Sizes read from the input are checked against the bytes that remain before
// anything is allocated, and the stack, mark stack and memo are bounded.

// Unpickler limits.
const (
	maxStack = 1 << 20 // values on the stack (and in all marks) at once
	maxMemo  = 1 << 20 // memo entries
	maxMarks = 1 << 16 // nested MARKs
	maxRank  = 64      // tensor dimensions
)

// pickle values besides nil, bool, int64, float64, string and []byte.
type (
	ptuple []any
	plist  struct{ items []any }
	pdict  struct {
		keys  []any
		vals  []any
		index map[any]int
	}
	pmark struct{}
	// pglobal is a resolved GLOBAL: one of the callables or storage types
	// torch.save uses.
	pglobal struct {
		module, name string
		kind         globalKind
		dtype        storageDType // for kindStorage
	}
	// storageRef is a storage named by a persistent id.
	storageRef struct {
		key   string
		dtype storageDType
		numel int64
	}
	// tensorRef is a view of a storage (torch._utils._rebuild_tensor_v2).
	tensorRef struct {
		storage *storageRef
		offset  int64
		size    []int64
		stride  []int64
	}
)

type globalKind int

const (
	kindOrderedDict globalKind = iota + 1
	kindRebuildTensorV2
	kindRebuildParameter
	kindRebuildParameterWithState
	kindStorage
)

func newDict() *pdict { return &pdict{index: map[any]int{}} }

func (d *pdict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, float64, nil:
	default:
		return fmt.Errorf("unsupported dict key of type %s", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func (d *pdict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// typeName describes a pickle value for error messages without walking it.
func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case ptuple:
		return "tuple"
	case *plist:
		return "list"
	case *pdict:
		return "dict"
	case *pglobal:
		return x.module + "." + x.name
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	case pmark:
		return "mark"
	}
	return fmt.Sprintf("%T", v)
}

// resolveGlobal maps the names torch.save uses for state dicts; every other
// global is refused.
func resolveGlobal(module, name string) (*pglobal, error) {
	g := &pglobal{module: module, name: name}
	switch module + "." + name {
	case "collections.OrderedDict":
		g.kind = kindOrderedDict
	case "torch._utils._rebuild_tensor_v2":
		g.kind = kindRebuildTensorV2
	case "torch._utils._rebuild_parameter":
		g.kind = kindRebuildParameter
	case "torch._utils._rebuild_parameter_with_state":
		g.kind = kindRebuildParameterWithState
	default:
		if module == "torch" {
			if dt, ok := storageTypes[name]; ok {
				g.kind, g.dtype = kindStorage, dt
				return g, nil
			}
		}
		return nil, fmt.Errorf("unsupported global %s.%s (only state dicts of tensors can be read)", module, name)
	}
	return g, nil
}

// unpickler is the machine state.
type unpickler struct {
	data     []byte
	pos      int
	stack    []any
	marks    []int
	memo     map[uint32]any
	storages map[string]*storageRef
}

var errTruncated = errors.New("truncated pickle")

// unpickle decodes a torch.save pickle and returns its root value.
func unpickle(data []byte) (v any, err error) {
	u := &unpickler{data: data, memo: map[uint32]any{}, storages: map[string]*storageRef{}}
	v, err = u.run()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: at byte %d: %w", u.pos, err)
	}
	return v, nil
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readByte() (byte, error) {
	b, err := u.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// readUint reads a little-endian unsigned integer of width bytes (1 to 8).
func (u *unpickler) readUint(width int) (uint64, error) {
	b, err := u.read(width)
	if err != nil {
		return 0, err
	}
	var n uint64
	for i := width - 1; i >= 0; i-- {
		n = n<<8 | uint64(b[i])
	}
	return n, nil
}

// memoKeyWidth is the width of the memo key that follows BINPUT/BINGET (1
// byte) or LONG_BINPUT/LONG_BINGET (4 bytes).
func memoKeyWidth(op byte) int {
	if op == 'r' || op == 'j' {
		return 4
	}
	return 1
}

// binString reads the operand of a length-prefixed string opcode:
// BINUNICODE, BINSTRING, BINBYTES (u32 length), SHORT_BINUNICODE,
// SHORT_BINSTRING, SHORT_BINBYTES (u8 length) or BINUNICODE8 (u64 length).
// The BYTES opcodes give a []byte, the others a string.
func (u *unpickler) binString(op byte) (any, error) {
	width := 4
	switch op {
	case 0x8c, 'U', 'C':
		width = 1
	case 0x8d:
		width = 8
	}
	n, err := u.readUint(width)
	if err != nil {
		return nil, err
	}
	s, err := u.str(n)
	if err != nil {
		return nil, err
	}
	if op == 'B' || op == 'C' {
		return []byte(s), nil
	}
	return s, nil
}

func (u *unpickler) readLine() (string, error) {
	for i := u.pos; i < len(u.data) && i-u.pos < 256; i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", errors.New("GLOBAL: missing or overlong name line")
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxStack {
		return fmt.Errorf("stack holds over %d values", maxStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && n <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && n <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	return u.stack[n-1], nil
}

// popMark returns the values pushed since the last MARK and removes them.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i uint32) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[i]; !ok && len(u.memo) >= maxMemo {
		return fmt.Errorf("memo holds over %d values", maxMemo)
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i uint32) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo key %d not defined", i)
	}
	return u.push(v)
}

func (u *unpickler) str(n uint64) (string, error) {
	if n > uint64(len(u.data)-u.pos) {
		return "", errTruncated
	}
	b, err := u.read(int(n))
	return string(b), err
}

func (u *unpickler) run() (any, error) {
	for {
		op, err := u.readByte()
		if err != nil {
			return nil, errors.New("truncated pickle (no STOP)")
		}
		switch op {
		case 0x80: // PROTO
			p, err := u.readByte()
			if err != nil {
				return nil, err
			}
			if p < 2 || p > 5 {
				return nil, fmt.Errorf("unsupported pickle protocol %d", p)
			}
		case 0x95: // FRAME
			if _, err := u.read(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(': // MARK
			if len(u.marks) >= maxMarks {
				return nil, fmt.Errorf("over %d nested MARKs", maxMarks)
			}
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			err = u.push(v)
			if err != nil {
				return nil, err
			}
		case 'N':
			err = u.push(nil)
		case 0x88:
			err = u.push(true)
		case 0x89:
			err = u.push(false)
		case 'K': // BININT1
			b, err := u.readByte()
			if err != nil {
				return nil, err
			}
			if err := u.push(int64(b)); err != nil {
				return nil, err
			}
		case 'M': // BININT2
			b, err := u.read(2)
			if err != nil {
				return nil, err
			}
			err = u.push(int64(binary.LittleEndian.Uint16(b)))
			if err != nil {
				return nil, err
			}
		case 'J': // BININT
			b, err := u.read(4)
			if err != nil {
				return nil, err
			}
			err = u.push(int64(int32(binary.LittleEndian.Uint32(b))))
			if err != nil {
				return nil, err
			}
		case 0x8a: // LONG1
			n, err := u.readByte()
			if err != nil {
				return nil, err
			}
			b, err := u.read(int(n))
			if err != nil {
				return nil, err
			}
			if n > 8 {
				return nil, fmt.Errorf("integer of %d bytes does not fit in int64", n)
			}
			var x int64
			for i := int(n) - 1; i >= 0; i-- {
				x = x<<8 | int64(b[i])
			}
			if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend
				x -= 1 << (8 * uint(n))
			}
			err = u.push(x)
			if err != nil {
				return nil, err
			}
		case 'G': // BINFLOAT
			b, err := u.read(8)
			if err != nil {
				return nil, err
			}
			err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			if err != nil {
				return nil, err
			}
		case 'X', 'T', 'B', 0x8c, 'U', 'C', 0x8d: // length-prefixed strings and bytes
			v, err := u.binString(op)
			if err != nil {
				return nil, err
			}
			if err := u.push(v); err != nil {
				return nil, err
			}
		case ')':
			err = u.push(ptuple{})
		case ']':
			err = u.push(&plist{})
		case '}':
			err = u.push(newDict())
		case 't', 'l': // TUPLE, LIST
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			var v any = ptuple(items)
			if op == 'l' {
				v = &plist{items: items}
			}
			if err := u.push(v); err != nil {
				return nil, err
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
				return nil, errors.New("stack underflow")
			}
			t := append(ptuple(nil), u.stack[len(u.stack)-n:]...)
			u.stack = u.stack[:len(u.stack)-n]
			err = u.push(t)
		case 'd': // DICT
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			d := newDict()
			if err := setItems(d, items); err != nil {
				return nil, err
			}
			if err := u.push(d); err != nil {
				return nil, err
			}
		case 's', 'u': // SETITEM, SETITEMS
			var items []any
			if op == 's' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				k, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{k, v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			d, ok := t.(*pdict)
			if !ok {
				return nil, fmt.Errorf("SETITEMS on a %s", typeName(t))
			}
			if err := setItems(d, items); err != nil {
				return nil, err
			}
		case 'a', 'e': // APPEND, APPENDS
			var items []any
			if op == 'a' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			t, err := u.top()
			if err != nil {
				return nil, err
			}
			l, ok := t.(*plist)
			if !ok {
				return nil, fmt.Errorf("APPENDS on a %s", typeName(t))
			}
			if len(l.items)+len(items) > maxStack {
				return nil, fmt.Errorf("list holds over %d values", maxStack)
			}
			l.items = append(l.items, items...)
		case 'q', 'r': // BINPUT, LONG_BINPUT
			i, err := u.readUint(memoKeyWidth(op))
			if err != nil {
				return nil, err
			}
			if err := u.memoPut(uint32(i)); err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			err = u.memoPut(uint32(len(u.memo)))
		case 'h', 'j': // BINGET, LONG_BINGET
			i, err := u.readUint(memoKeyWidth(op))
			if err != nil {
				return nil, err
			}
			if err := u.memoGet(uint32(i)); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL
			mod, err := u.readLine()
			if err != nil {
				return nil, err
			}
			name, err := u.readLine()
			if err != nil {
				return nil, err
			}
			g, err := resolveGlobal(mod, name)
			if err != nil {
				return nil, err
			}
			err = u.push(g)
			if err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			name, err := u.pop()
			if err != nil {
				return nil, err
			}
			mod, err := u.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := mod.(string)
			ns, ok2 := name.(string)
			if !ok1 || !ok2 {
				return nil, errors.New("STACK_GLOBAL needs two strings")
			}
			g, err := resolveGlobal(ms, ns)
			if err != nil {
				return nil, err
			}
			err = u.push(g)
			if err != nil {
				return nil, err
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			s, err := u.persistentLoad(pid)
			if err != nil {
				return nil, err
			}
			err = u.push(s)
			if err != nil {
				return nil, err
			}
		case 'R': // REDUCE
			args, err := u.pop()
			if err != nil {
				return nil, err
			}
			fn, err := u.pop()
			if err != nil {
				return nil, err
			}
			v, err := reduce(fn, args)
			if err != nil {
				return nil, err
			}
			err = u.push(v)
			if err != nil {
				return nil, err
			}
		case 'b': // BUILD
			state, err := u.pop()
			if err != nil {
				return nil, err
			}
			obj, err := u.top()
			if err != nil {
				return nil, err
			}
			switch obj.(type) {
			case *pdict, *tensorRef:
				// An OrderedDict's state is its _metadata attribute (module
				// versions); a tensor's is Python attributes. Neither
				// changes the values.
			default:
				return nil, fmt.Errorf("BUILD on a %s with a %s state", typeName(obj), typeName(state))
			}
		default:
			return nil, fmt.Errorf("unsupported pickle opcode 0x%02x", op)
		}
		if err != nil {
			return nil, err
		}
	}
}

func setItems(d *pdict, items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of values for SETITEMS")
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// persistentLoad resolves ('storage', StorageType, key, location, numel).
func (u *unpickler) persistentLoad(pid any) (*storageRef, error) {
	t, ok := pid.(ptuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("persistent id is a %s, not a 5-tuple ('storage', type, key, location, numel)", typeName(pid))
	}
	if s, _ := t[0].(string); s != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v, not 'storage'", t[0])
	}
	g, ok := t[1].(*pglobal)
	if !ok || g.kind != kindStorage {
		return nil, fmt.Errorf("persistent id names storage type %s", typeName(t[1]))
	}
	key, ok1 := t[2].(string)
	numel, ok2 := t[4].(int64)
	if !ok1 || !ok2 || numel < 0 {
		return nil, errors.New("persistent id needs a string key and a non-negative element count")
	}
	if s, ok := u.storages[key]; ok {
		if s.dtype != g.dtype || s.numel != numel {
			return nil, fmt.Errorf("storage %q is declared twice with different types or sizes", key)
		}
		return s, nil
	}
	if len(u.storages) >= maxMemo {
		return nil, fmt.Errorf("over %d storages", maxMemo)
	}
	s := &storageRef{key: key, dtype: g.dtype, numel: numel}
	u.storages[key] = s
	return s, nil
}

// reduce applies one of the resolved callables.
func reduce(fn, args any) (any, error) {
	g, ok := fn.(*pglobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE calls a %s", typeName(fn))
	}
	a, ok := args.(ptuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE of %s.%s with %s arguments", g.module, g.name, typeName(args))
	}
	switch g.kind {
	case kindOrderedDict:
		if len(a) != 0 {
			return nil, errors.New("collections.OrderedDict called with arguments")
		}
		return newDict(), nil
	case kindRebuildTensorV2:
		return rebuildTensor(a)
	case kindRebuildParameter, kindRebuildParameterWithState:
		if len(a) < 1 {
			return nil, fmt.Errorf("%s.%s without arguments", g.module, g.name)
		}
		t, ok := a[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%s.%s of a %s", g.module, g.name, typeName(a[0]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s.%s cannot be called", g.module, g.name)
}

// rebuildTensor checks the arguments of _rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
// Bounds against the storage are checked when the tensor is materialised.
func rebuildTensor(a ptuple) (*tensorRef, error) {
	if len(a) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(a))
	}
	s, ok := a[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2 of a %s, not a storage", typeName(a[0]))
	}
	off, ok := a[1].(int64)
	if !ok || off < 0 {
		return nil, errors.New("_rebuild_tensor_v2: storage offset is not a non-negative int")
	}
	size, err := intTuple(a[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(a[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in length", size, stride)
	}
	return &tensorRef{storage: s, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(ptuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %s is a %s, not a tuple", what, typeName(v))
	}
	if len(t) > maxRank {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %s has %d dimensions (at most %d)", what, len(t), maxRank)
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: %s[%d] is not a non-negative int", what, i)
		}
		out[i] = n
	}
	return out, nil
}
