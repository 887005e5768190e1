package el

import (
	"strings"
	"sync"
	"unsafe"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// root is the environment expr compiles against. A struct rather than a map
// lets expr resolve fields by index at compile time and reject misspelt
// fields (#request.headres) before any request arrives.
//
// The helper fields hold the functions the patcher substitutes for SpEL
// forms. expr calls a function stored in an environment field whose
// signature it knows (func(any, any) any and friends) directly from its
// stack; functions registered with expr.Function instead get an argument
// slice that expr allocates on every run, which a per-message condition
// cannot afford. The fields are set once per pooled frame (see helperRoot).
type root struct {
	Request *requestView   `expr:"request"`
	Context contextView    `expr:"context"`
	Message *messageView   `expr:"message"`
	API     map[string]any `expr:"api"`

	HeaderGet   func(any, any) any    `expr:"__elHeader"`
	HeaderFirst func(any, any) any    `expr:"__elHeader0"`
	HeaderHas   func(any, any) bool   `expr:"__elHeaderHas"`
	ListGet     func(any, any) any    `expr:"__elList"`
	ListFirst   func(any, any) any    `expr:"__elList0"`
	ListHas     func(any, any) bool   `expr:"__elListHas"`
	StringGet   func(any, any) any    `expr:"__elString"`
	MapGet      func(any, any) any    `expr:"__elMap"`
	StringHas   func(any, any) bool   `expr:"__elStringHas"`
	JSONPath    func(any, any) any    `expr:"jsonPath"`
	Anchor      func(any) any         `expr:"__elAnchor"`
	Matches     func(any, any) bool   `expr:"__elMatches"`
	Concat      func(any, any) string `expr:"__elConcat"`

	Length           func(any) any       `expr:"__elLength"`
	Size             func(any) any       `expr:"__elSize"`
	IsEmpty          func(any) bool      `expr:"__elIsEmpty"`
	Upper            func(any) any       `expr:"__elToUpperCase"`
	Lower            func(any) any       `expr:"__elToLowerCase"`
	Trim             func(any) any       `expr:"__elTrim"`
	ToString         func(any) any       `expr:"__elToString"`
	Contains         func(any, any) bool `expr:"__elContains"`
	ContainsKey      func(any, any) bool `expr:"__elContainsKey"`
	EqualsIgnoreCase func(any, any) bool `expr:"__elEqualsIgnoreCase"`
	Substring        func(any, any) any  `expr:"__elSubstring"`
	IndexOf          func(any, any) any  `expr:"__elIndexOf"`
	LastIndexOf      func(any, any) any  `expr:"__elLastIndexOf"`
	Split            func(any, any) any  `expr:"__elSplit"`
	Get              func(any, any) any  `expr:"__elGet"`
}

// helperRoot is the template every frame's root is reset to: the helper
// functions set, every root empty.
var helperRoot = root{
	HeaderGet:        headerGet,
	HeaderFirst:      headerFirst,
	HeaderHas:        headerHas,
	ListGet:          listGet,
	ListFirst:        listFirst,
	ListHas:          listHas,
	StringGet:        stringGet,
	StringHas:        stringHas,
	MapGet:           mapGet,
	JSONPath:         jsonPathFn,
	Anchor:           anchorFn,
	Matches:          matchesFn,
	Concat:           concatFn,
	Length:           lengthFn,
	Size:             sizeFn,
	IsEmpty:          isEmptyFn,
	Upper:            upperFn,
	Lower:            lowerFn,
	Trim:             trimFn,
	ToString:         toStringFn,
	Contains:         containsFn,
	ContainsKey:      containsKeyFn,
	EqualsIgnoreCase: equalsIgnoreCaseFn,
	Substring:        substring1Fn,
	IndexOf:          indexOf1Fn,
	LastIndexOf:      lastIndexOfFn,
	Split:            splitFn,
	Get:              getFn,
}

type requestView struct {
	ID               string              `expr:"id"`
	TransactionID    string              `expr:"transactionId"`
	ClientIdentifier string              `expr:"clientIdentifier"`
	Method           string              `expr:"method"`
	Path             string              `expr:"path"`
	ContextPath      string              `expr:"contextPath"`
	PathInfo         string              `expr:"pathInfo"`
	Headers          gateway.Headers     `expr:"headers"`
	Params           map[string][]string `expr:"params"`
	PathParams       map[string]string   `expr:"pathParams"`
	RemoteAddress    string              `expr:"remoteAddress"`
	// Content is a string held in an interface (see cell), so that reading
	// it costs neither a copy of the body nor a boxing allocation.
	Content any `expr:"content"`
}

type contextView struct {
	Attributes map[string]any `expr:"attributes"`
}

type messageView struct {
	// ID is nil rather than "" when the QoS gives no ids, as in the reference,
	// so {#message.id != null} means what it says.
	ID any `expr:"id"`
	// Content is held like requestView.Content.
	Content any `expr:"content"`
	// ContentLength is an int held like Content: per-message conditions
	// compare it, and a large int would otherwise be boxed on every read.
	ContentLength  any             `expr:"contentLength"`
	Headers        gateway.Headers `expr:"headers"`
	Metadata       map[string]any  `expr:"metadata"`
	Attributes     map[string]any  `expr:"attributes"`
	AttributeNames []string        `expr:"attributeNames"`
	Error          bool            `expr:"error"`
}

// cell is an interface value whose data word points at a T the frame owns.
// Setting *p changes what the interface holds without the allocation a
// fresh conversion to any makes (strings, and ints beyond 255, are copied
// to the heap when converted); expr then reads the field like any other
// interface. This is safe because the frame is only reset after its
// evaluation returned, and frame.detach re-boxes any result that still is
// the cell.
type cell[T any] struct {
	box any
	p   *T
}

// eface is the layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func newCell[T any]() cell[T] {
	p := new(T)
	var box any = *p // only the type word is kept
	(*eface)(unsafe.Pointer(&box)).data = unsafe.Pointer(p)
	return cell[T]{box: box, p: p}
}

// set stores v in the cell and returns the interface that holds it.
func (c *cell[T]) set(v T) any {
	*c.p = v
	return c.box
}

// holds reports whether v is this cell's interface value.
func (c *cell[T]) holds(v any) bool {
	return (*eface)(unsafe.Pointer(&v)).data == unsafe.Pointer(c.p)
}

// frame holds the environment of one evaluation. Frames are pooled, and
// the views live inside them, so that an evaluation allocates nothing to
// build its environment.
type frame struct {
	root    root
	req     requestView
	msg     messageView
	reqCell cell[string]
	msgCell cell[string]
	lenCell cell[int]
	// reqBody and msgBody are the byte slices the content strings view,
	// kept to recognise results that still point into them.
	reqBody []byte
	msgBody []byte
}

var framePool = sync.Pool{New: func() any {
	return &frame{reqCell: newCell[string](), msgCell: newCell[string](), lenCell: newCell[int]()}
}}

// usage records which roots and costly fields a template reads, so an
// evaluation builds only the views it needs and lists attribute names only
// when asked for.
type usage struct {
	request    bool
	message    bool
	reqContent bool
	msgContent bool
	msgNames   bool
}

func (u *usage) merge(o usage) {
	u.request = u.request || o.request
	u.message = u.message || o.message
	u.reqContent = u.reqContent || o.reqContent
	u.msgContent = u.msgContent || o.msgContent
	u.msgNames = u.msgNames || o.msgNames
}

// bytesView returns b as a string without copying. Callers guarantee that
// the string does not outlive the evaluation unless detach copied it.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func newFrame(env *Env, u usage) *frame {
	f := framePool.Get().(*frame)
	f.root = helperRoot
	f.root.Context.Attributes = env.Attributes
	f.root.API = env.API
	if r := env.Request; r != nil && u.request {
		f.req = requestView{
			ID:               r.ID,
			TransactionID:    r.TransactionID,
			ClientIdentifier: r.ClientIdentifier,
			Method:           r.Method,
			Path:             r.Path,
			ContextPath:      r.ContextPath,
			PathInfo:         r.PathInfo,
			Headers:          r.Headers,
			Params:           r.Params,
			PathParams:       r.PathParams,
			RemoteAddress:    r.RemoteAddress,
		}
		if u.reqContent {
			f.reqBody = r.Body
			f.req.Content = f.reqCell.set(bytesView(r.Body))
		}
		f.root.Request = &f.req
	}
	if m := env.Message; m != nil && u.message {
		f.msg = messageView{
			ContentLength: f.lenCell.set(len(m.Content)),
			Headers:       m.Headers,
			Metadata:      m.Metadata,
			Attributes:    m.Attributes,
			Error:         m.Error != nil,
		}
		if m.ID != "" {
			f.msg.ID = m.ID
		}
		if u.msgContent {
			f.msgBody = m.Content
			f.msg.Content = f.msgCell.set(bytesView(m.Content))
		}
		if u.msgNames {
			// A fresh slice: the result may be this very list.
			f.msg.AttributeNames = attributeNames(m.Attributes)
		}
		f.root.Message = &f.msg
	}
	return f
}

// release clears every reference to the evaluation's data, so a pooled
// frame neither keeps a request alive nor leaks it into the next one.
func (f *frame) release() {
	f.root = root{}
	f.req = requestView{}
	f.msg = messageView{}
	f.reqCell.set("")
	f.msgCell.set("")
	f.lenCell.set(0)
	f.reqBody, f.msgBody = nil, nil
	framePool.Put(f)
}

// detach makes a result independent of the frame: strings that view a
// request or message body are copied, the content cells are re-boxed and
// views are copied out of the frame. Results that do not refer to the frame
// (nearly all of them) are returned as they are, without allocating.
func (f *frame) detach(v any, depth int) (any, bool) {
	if depth > maxDepth {
		return v, false
	}
	if f.lenCell.holds(v) {
		return *f.lenCell.p, true // a new conversion copies the value out
	}
	switch x := v.(type) {
	case nil:
		return nil, false
	case string:
		if f.aliases(x) {
			return strings.Clone(x), true
		}
		if f.reqCell.holds(v) || f.msgCell.holds(v) {
			return x, true
		}
	case []string:
		var out []string
		for i, s := range x {
			if f.aliases(s) {
				if out == nil {
					out = append([]string(nil), x...)
				}
				out[i] = strings.Clone(s)
			}
		}
		if out != nil {
			return out, true
		}
	case []any:
		var out []any
		for i, e := range x {
			if d, changed := f.detach(e, depth+1); changed {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = d
			}
		}
		if out != nil {
			return out, true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if d, changed := f.detach(e, depth+1); changed {
				if out == nil {
					out = make(map[string]any, len(x))
					for k2, e2 := range x {
						out[k2] = e2
					}
				}
				out[k] = d
			}
		}
		if out != nil {
			return out, true
		}
	case *requestView:
		if x == nil {
			return v, false
		}
		c := *x
		c.Content, _ = f.detach(c.Content, depth+1)
		return &c, true
	case *messageView:
		if x == nil {
			return v, false
		}
		c := *x
		c.Content, _ = f.detach(c.Content, depth+1)
		c.ContentLength, _ = f.detach(c.ContentLength, depth+1)
		return &c, true
	case *root:
		if x == nil {
			return v, false
		}
		c := *x
		if c.Request != nil {
			r, _ := f.detach(c.Request, depth+1)
			c.Request = r.(*requestView)
		}
		if c.Message != nil {
			m, _ := f.detach(c.Message, depth+1)
			c.Message = m.(*messageView)
		}
		return &c, true
	}
	return v, false
}

// aliases reports whether s points into a body this frame viewed.
func (f *frame) aliases(s string) bool {
	if len(s) == 0 {
		return false
	}
	return within(s, f.reqBody) || within(s, f.msgBody)
}

func within(s string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	start := uintptr(unsafe.Pointer(&b[0]))
	return p >= start && p < start+uintptr(len(b))
}
