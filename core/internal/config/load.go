package config

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/sluice-gw/sluice/core/internal/flow"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/sdk/el"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
)

// Loader loads configuration files. It owns the one hclparse.Parser that
// holds every file's source, so WriteDiagnostics can print snippets for any
// diagnostic it produced. It is safe for concurrent use, and one Loader can
// serve reloads: Load always reads the file afresh.
type Loader struct {
	mu     sync.Mutex
	parser *hclparse.Parser
}

// NewLoader returns a Loader with an empty parser.
func NewLoader() *Loader {
	return &Loader{parser: hclparse.NewParser()}
}

// Load reads the file at path and decodes its structure (stage 1). Files
// ending in ".json" are read as HCL's JSON syntax, all others as native
// syntax. The functions env("NAME") and file("path") are available in every
// expression.
//
// The File is nil only when the file cannot be read or has syntax errors;
// otherwise it holds everything that could be decoded, even when diags has
// errors, so Decode can report the plugin blocks' problems in the same run.
func (l *Loader) Load(path string) (*File, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration file",
			Detail:   fmt.Sprintf("%s: %s.", path, unwrapPathError(err)),
		}}
	}
	var hf *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(path, ".json") {
		hf, diags = hcljson.Parse(src, path)
	} else {
		hf, diags = hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	}
	if hf != nil {
		// AddFile replaces an earlier version of the same file, unlike
		// ParseHCLFile, which would hand back the cached one on reload.
		l.mu.Lock()
		l.parser.AddFile(path, hf)
		l.mu.Unlock()
	}
	if diags.HasErrors() || hf == nil {
		return nil, diags
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot resolve the configuration file's directory",
			Detail:   err.Error(),
		})
	}
	f := &File{Path: path, dir: filepath.Dir(abs)}
	f.reads = &readSet{}
	f.eval = evalContext(f.dir, f.reads)
	diags = append(diags, loadFile(f, hf.Body)...)
	return f, diags
}

// rootHCL is the top level. Blocks are taken as shells and their bodies
// decoded one by one, so each diagnostic can be prefixed with its block.
// gateway and dev_kafka are slices so that a duplicate is reported and the
// first block is still used.
type rootHCL struct {
	Gateways  []*shellHCL      `hcl:"gateway,block"`
	DevKafkas []*shellHCL      `hcl:"dev_kafka,block"`
	APIs      []*namedShellHCL `hcl:"api,block"`
}

type shellHCL struct {
	DefRange hcl.Range `hcl:",def_range"`
	Body     hcl.Body  `hcl:",remain"`
}

type namedShellHCL struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Body      hcl.Body  `hcl:",remain"`
}

// Attributes are taken as expressions and evaluated by evalString, so a
// failing function call is reported once, not again as an unsuitable value.
type gatewayHCL struct {
	Listen      hcl.Expression `hcl:"listen,optional"`
	AdminListen hcl.Expression `hcl:"admin_listen,optional"`
	PluginDir   hcl.Expression `hcl:"plugin_dir,optional"`
	PluginDirs  hcl.Expression `hcl:"plugin_dirs,optional"`
	Plugins     []*pinHCL      `hcl:"plugin,block"`
	TLS         []*shellHCL    `hcl:"tls,block"`
	Limits      []*shellHCL    `hcl:"limits,block"`
	Log         []*shellHCL    `hcl:"log,block"`
	Reload      []*shellHCL    `hcl:"reload,block"`
}

type pinHCL struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	SHA256    hcl.Expression `hcl:"sha256"`
}

type devKafkaHCL struct {
	Listen  hcl.Expression `hcl:"listen,optional"`
	DataDir hcl.Expression `hcl:"data_dir,optional"`
	Topics  hcl.Expression `hcl:"topics,optional"`
}

type apiHCL struct {
	ContextPath hcl.Expression   `hcl:"context_path"`
	Plans       []*planHCL       `hcl:"plan,block"`
	Entrypoints []*entrypointHCL `hcl:"entrypoint,block"`
	Endpoints   []*endpointHCL   `hcl:"endpoint,block"`
	Flows       []*flowHCL       `hcl:"flow,block"`
	CORS        []*shellHCL      `hcl:"cors,block"`
	Limits      []*shellHCL      `hcl:"limits,block"`
}

type planHCL struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Body      hcl.Body  `hcl:",remain"`
}

type entrypointHCL struct {
	Type      string    `hcl:"type,label"`
	TypeRange hcl.Range `hcl:"type,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Body      hcl.Body  `hcl:",remain"`
}

type endpointHCL struct {
	Type      string    `hcl:"type,label"`
	TypeRange hcl.Range `hcl:"type,label_range"`
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`
	Body      hcl.Body  `hcl:",remain"`
}

type flowHCL struct {
	Name     string    `hcl:"name,label"`
	DefRange hcl.Range `hcl:",def_range"`
	Body     hcl.Body  `hcl:",remain"`
}

// loadFile decodes the top level into f.
func loadFile(f *File, body hcl.Body) hcl.Diagnostics {
	var root rootHCL
	diags := gohcl.DecodeBody(body, f.eval, &root)

	diags = append(diags, duplicateBlocks("gateway", root.Gateways)...)
	diags = append(diags, duplicateBlocks("dev_kafka", root.DevKafkas)...)
	var gw *shellHCL
	if len(root.Gateways) > 0 {
		gw = root.Gateways[0]
	}
	diags = append(diags, loadGateway(f, gw)...)
	if len(root.DevKafkas) > 0 {
		diags = append(diags, loadDevKafka(f, root.DevKafkas[0])...)
	}

	names := map[string]*namedShellHCL{}
	paths := map[string]*API{}
	pathRanges := map[string]hcl.Range{}
	for _, shell := range root.APIs {
		api, ctxRange, d := loadAPI(f, shell)
		diags = append(diags, d...)
		where := fmt.Sprintf("api %q", shell.Name)
		if prev, dup := names[shell.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Duplicate api %q", where, shell.Name),
				Detail:   fmt.Sprintf("Another api %q is defined at %s; API names must be unique.", shell.Name, startString(prev.NameRange)),
				Subject:  shell.NameRange.Ptr(),
			})
		} else {
			names[shell.Name] = shell
		}
		if ctxRange != nil {
			if prev, dup := paths[api.ContextPath]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Duplicate context path %q", where, api.ContextPath),
					Detail: fmt.Sprintf("api %q at %s already serves %q; give each API its own context_path.",
						prev.Name, startString(pathRanges[api.ContextPath]), api.ContextPath),
					Subject: ctxRange.Ptr(),
				})
			} else {
				paths[api.ContextPath] = api
				pathRanges[api.ContextPath] = *ctxRange
			}
		}
		// Duplicates are kept, so stage 2 still reports their plugin blocks.
		f.APIs = append(f.APIs, api)
	}
	mtls := map[*API]hcl.Range{}
	for i, api := range f.APIs {
		for _, p := range mtlsPlanRanges(root.APIs[i]) {
			mtls[api] = p
		}
	}
	diags = append(diags, checkMTLSPlans(f, mtls)...)
	for _, api := range f.APIs {
		if api.MaxRequestBodyBytes == 0 {
			api.MaxRequestBodyBytes = f.Gateway.Limits.MaxRequestBodyBytes
		}
	}
	return diags
}

// mtlsPlanRanges returns the label range of an api block's mtls plan, if
// it has one.
func mtlsPlanRanges(shell *namedShellHCL) []hcl.Range {
	content, _, _ := shell.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "plan", LabelNames: []string{"name"}}}})
	if content == nil {
		return nil
	}
	for _, b := range content.Blocks {
		if len(b.Labels) == 1 && b.Labels[0] == "mtls" {
			return []hcl.Range{b.LabelRanges[0]}
		}
	}
	return nil
}

// duplicateBlocks reports every block after the first of a type that may
// appear once; the first is the one used.
func duplicateBlocks(typ string, blocks []*shellHCL) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i := 1; i < len(blocks); i++ {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Duplicate %s block", typ),
			Detail:   fmt.Sprintf("Only one %s block is allowed; the first is at %s.", typ, startString(blocks[0].DefRange)),
			Subject:  blocks[i].DefRange.Ptr(),
		})
	}
	return diags
}

// loadGateway fills f.Gateway from the gateway block, or with defaults when
// there is none.
func loadGateway(f *File, shell *shellHCL) hcl.Diagnostics {
	f.Gateway = Gateway{
		Listen:      DefaultListen,
		AdminListen: DefaultAdminListen,
		PluginDirs:  []string{resolvePath(f.dir, DefaultPluginDir)},
		Pins:        map[string]string{},
		Limits:      DefaultLimits(),
		Log:         DefaultLog(),
		Reload:      DefaultReload(),
	}
	if shell == nil {
		return nil
	}
	const where = "gateway"
	var g gatewayHCL
	diags := prefixed(where, gohcl.DecodeBody(shell.Body, f.eval, &g))
	diags = append(diags, prefixed(where, duplicateBlocks("tls", g.TLS))...)
	diags = append(diags, prefixed(where, duplicateBlocks("limits", g.Limits))...)
	if len(g.TLS) > 0 {
		diags = append(diags, loadTLS(f, where+" > tls", g.TLS[0].Body, g.TLS[0].DefRange)...)
	}
	if len(g.Limits) > 0 {
		diags = append(diags, loadLimits(f, where+" > limits", g.Limits[0].Body)...)
	}
	diags = append(diags, prefixed(where, duplicateBlocks("log", g.Log))...)
	if len(g.Log) > 0 {
		diags = append(diags, loadLog(f, where+" > log", g.Log[0].Body)...)
	}
	diags = append(diags, prefixed(where, duplicateBlocks("reload", g.Reload))...)
	if len(g.Reload) > 0 {
		diags = append(diags, loadReload(f, where+" > reload", g.Reload[0].Body)...)
	}
	listen, listenOK, d := evalString(where, g.Listen, f.eval)
	diags = append(diags, d...)
	if listenOK {
		f.Gateway.Listen = listen
		diags = append(diags, checkHostPort(where, "listen", listen, g.Listen.Range())...)
	}
	admin, adminOK, d := evalString(where, g.AdminListen, f.eval)
	diags = append(diags, d...)
	if adminOK {
		f.Gateway.AdminListen = admin
		diags = append(diags, checkHostPort(where, "admin_listen", admin, g.AdminListen.Range())...)
	}
	if (listenOK || adminOK) && f.Gateway.Listen == f.Gateway.AdminListen && !strings.HasSuffix(f.Gateway.Listen, ":0") {
		rng := g.Listen.Range()
		if adminOK {
			rng = g.AdminListen.Range()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: listen and admin_listen are both %q", where, f.Gateway.Listen),
			Detail:   "The admin endpoints need their own address; change one of them.",
			Subject:  rng.Ptr(),
		})
	}
	diags = append(diags, loadPluginDirs(f, where, g.PluginDir, g.PluginDirs)...)
	seen := map[string]hcl.Range{}
	for _, p := range g.Plugins {
		pw := fmt.Sprintf("%s > plugin %q", where, p.Name)
		if prev, dup := seen[p.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Duplicate pin for plugin %q", pw, p.Name),
				Detail:   fmt.Sprintf("Plugin %q is already pinned at %s; keep one pin per plugin.", p.Name, startString(prev)),
				Subject:  p.NameRange.Ptr(),
			})
			continue
		}
		seen[p.Name] = p.NameRange
		if p.Name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  pw + ": The plugin name must not be empty",
				Detail:   `Name the plugin as its binary does without the prefix, e.g. plugin "endpoint-kafka".`,
				Subject:  p.NameRange.Ptr(),
			})
			continue
		}
		sum, ok, d := requireString(pw, "sha256", p.SHA256, f.eval)
		diags = append(diags, d...)
		if !ok {
			continue // a missing or unusable sha256 is already reported
		}
		if !sha256Hex.MatchString(sum) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid sha256 %q", pw, sum),
				Detail:   "A pin is 64 hexadecimal digits, as printed by `sha256sum` for the plugin binary.",
				Subject:  p.SHA256.Range().Ptr(),
			})
			continue
		}
		f.Gateway.Pins[p.Name] = strings.ToLower(sum)
	}
	return diags
}

// loadPluginDirs sets f.Gateway.PluginDirs from plugin_dir or plugin_dirs.
// Both at once is an error rather than a merge: which of the two would come
// first in the search is a guess an operator should not have to make, and
// plugin_dirs alone says everything plugin_dir does.
func loadPluginDirs(f *File, where string, single, list hcl.Expression) hcl.Diagnostics {
	dir, dirOK, diags := evalString(where, single, f.eval)
	dirs, ranges, listOK, d := evalStringList(where, list, f.eval)
	diags = append(diags, d...)
	if dirOK && listOK {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": plugin_dir and plugin_dirs are both set",
			Detail: fmt.Sprintf("plugin_dir is set at %s; keep one of the two, e.g. plugin_dirs = [%q, ...] to search that directory first.",
				startString(single.Range()), dir),
			Subject: list.Range().Ptr(),
		})
	}
	if dirOK {
		if dir == "" {
			return append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  where + `: plugin_dir must not be empty`,
				Detail:   `Name the directory holding the plugin binaries, e.g. "bin/plugins" (relative to this file).`,
				Subject:  single.Range().Ptr(),
			})
		}
		f.Gateway.PluginDirs = []string{resolvePath(f.dir, dir)}
		return diags
	}
	if !listOK || d.HasErrors() {
		return diags
	}
	if len(dirs) == 0 {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": plugin_dirs must not be empty",
			Detail:   `List the directories holding plugin binaries, searched in order, e.g. ["bin/plugins", "/opt/sluice/third-party"].`,
			Subject:  list.Range().Ptr(),
		})
	}
	var resolved []string
	seen := map[string]hcl.Range{}
	bad := false
	for i, dir := range dirs {
		if dir == "" {
			bad = true
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  where + ": a plugin_dirs entry is empty",
				Detail:   `Name a directory holding plugin binaries (relative to this file), or remove the entry.`,
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		abs := resolvePath(f.dir, dir)
		if prev, dup := seen[abs]; dup {
			// Harmless to search twice, but a sign the list is not what
			// the operator meant (a copy-paste that lost an edit).
			bad = true
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: plugin_dirs lists %s twice", where, abs),
				Detail:   fmt.Sprintf("It is already listed at %s; remove one of the two.", startString(prev)),
				Subject:  ranges[i].Ptr(),
			})
			continue
		}
		seen[abs] = ranges[i]
		resolved = append(resolved, abs)
	}
	if !bad {
		f.Gateway.PluginDirs = resolved
	}
	return diags
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// loadDevKafka fills f.DevKafka from the dev_kafka block.
func loadDevKafka(f *File, shell *shellHCL) hcl.Diagnostics {
	const where = "dev_kafka"
	dk := &DevKafka{
		Listen:  DefaultDevKafkaListen,
		DataDir: resolvePath(f.dir, DefaultDevKafkaDataDir),
		Topics:  map[string]int{},
	}
	f.DevKafka = dk
	var h devKafkaHCL
	diags := prefixed(where, gohcl.DecodeBody(shell.Body, f.eval, &h))
	listen, ok, d := evalString(where, h.Listen, f.eval)
	diags = append(diags, d...)
	if ok {
		dk.Listen = listen
		diags = append(diags, checkHostPort(where, "listen", listen, h.Listen.Range())...)
	}
	dataDir, ok, d := evalString(where, h.DataDir, f.eval)
	diags = append(diags, d...)
	if ok {
		if dataDir == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  where + ": data_dir must not be empty",
				Detail:   `Name the directory the broker persists to, e.g. ".sluice/kafka" (relative to this file).`,
				Subject:  h.DataDir.Range().Ptr(),
			})
		} else {
			dk.DataDir = resolvePath(f.dir, dataDir)
		}
	}
	diags = append(diags, decodeTopics(f, where, h.Topics, dk)...)
	return diags
}

// decodeTopics decodes dev_kafka's topics map (name = partitions) into dk,
// reporting each bad entry on its own line of the map.
func decodeTopics(f *File, where string, expr hcl.Expression, dk *DevKafka) hcl.Diagnostics {
	if expr == nil {
		return nil
	}
	val, diags := expr.Value(f.eval)
	if diags.HasErrors() {
		return prefixed(where, diags)
	}
	if val.IsNull() {
		return diags
	}
	m, err := convert.Convert(val, cty.Map(cty.Number))
	if err != nil {
		return append(diags, &hcl.Diagnostic{
			Severity:   hcl.DiagError,
			Summary:    where + ": Invalid topics",
			Detail:     fmt.Sprintf("topics maps each topic name to its partition count, e.g. topics = { demo = 3 } (%s).", err),
			Subject:    expr.Range().Ptr(),
			Expression: expr,
		})
	}
	for it := m.ElementIterator(); it.Next(); {
		k, v := it.Element()
		name := k.AsString()
		rng := objectItemRange(expr, f.eval, name)
		if msg := checkTopicName(name); msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid topic name %q", where, name),
				Detail:   msg,
				Subject:  rng.Ptr(),
			})
			continue
		}
		if v.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Topic %q has no partition count", where, name),
				Detail:   "Give the number of partitions, e.g. demo = 3.",
				Subject:  rng.Ptr(),
			})
			continue
		}
		bf := v.AsBigFloat()
		n, acc := bf.Int64()
		if !bf.IsInt() || acc != big.Exact || n < 1 || n > maxPartitions {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Topic %q has %s partitions", where, name, bf.Text('f', -1)),
				Detail:   fmt.Sprintf("The partition count is a whole number from 1 to %d, e.g. %s = 3.", maxPartitions, name),
				Subject:  rng.Ptr(),
			})
			continue
		}
		dk.Topics[name] = int(n)
	}
	return diags
}

// maxPartitions bounds a dev topic's partition count; the embedded broker is
// for development, and a typo like 30000 should not allocate 30000 logs.
const maxPartitions = 1000

// objectItemRange returns the range of the item with the given key in an
// object constructor expression, or the whole expression's range.
func objectItemRange(expr hcl.Expression, eval *hcl.EvalContext, key string) hcl.Range {
	if oc, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range oc.Items {
			kv, d := item.KeyExpr.Value(eval)
			if d.HasErrors() || kv.IsNull() || !kv.IsKnown() || !kv.Type().Equals(cty.String) {
				continue
			}
			if kv.AsString() == key {
				return hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range())
			}
		}
	}
	return expr.Range()
}

// checkTopicName returns why name is not a legal Kafka topic name, or "".
func checkTopicName(name string) string {
	switch {
	case name == "":
		return "A topic name must not be empty."
	case name == "." || name == "..":
		return `Kafka does not allow "." or ".." as a topic name.`
	case len(name) > 249:
		return "Kafka topic names are at most 249 characters long."
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("Kafka topic names hold only letters, digits, '.', '_' and '-'; %q is not allowed.", r)
		}
	}
	return ""
}

// checkHostPort reports a listen address that is not host:port.
func checkHostPort(where, attr, value string, rng hcl.Range) hcl.Diagnostics {
	_, port, err := net.SplitHostPort(value)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = fmt.Errorf("port %d is out of range", n)
		}
	}
	if err == nil {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("%s: Invalid %s address %q", where, attr, value),
		Detail:   fmt.Sprintf("Give host:port with a numeric port, e.g. \"127.0.0.1:8082\" (%s).", err),
		Subject:  rng.Ptr(),
	}}
}

// loadAPI decodes one api block. ctxRange is the context_path value's range
// when it was given and valid, for the duplicate check.
func loadAPI(f *File, shell *namedShellHCL) (api *API, ctxRange *hcl.Range, diags hcl.Diagnostics) {
	where := fmt.Sprintf("api %q", shell.Name)
	api = &API{Name: shell.Name, Range: shell.DefRange}
	var h apiHCL
	diags = prefixed(where, gohcl.DecodeBody(shell.Body, f.eval, &h))

	cp, ok, d := requireString(where, "context_path", h.ContextPath, f.eval)
	diags = append(diags, d...)
	if ok {
		api.ContextPath = cp
		rng := h.ContextPath.Range()
		if msg := checkContextPath(cp); msg != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid context_path %q", where, cp),
				Detail:   msg,
				Subject:  rng.Ptr(),
			})
		} else {
			ctxRange = &rng
		}
	}

	// A push plan authenticates no request: it lists the subscriptions the
	// gateway itself delivers. The other plans guard the HTTP entrypoints.
	var requestPlans []*planHCL
	var pushPlan *planHCL
	for _, pb := range h.Plans {
		if pb.Name != PlanPush {
			requestPlans = append(requestPlans, pb)
			continue
		}
		pw := fmt.Sprintf("%s > plan %q", where, pb.Name)
		if pushPlan != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("%s: Duplicate plan %q", where, pb.Name),
				Detail:  fmt.Sprintf("This API already has a %q plan at %s; put all its subscriptions in that block.", pb.Name, startString(pushPlan.NameRange)),
				Subject: pb.NameRange.Ptr()})
			continue
		}
		pushPlan = pb
		subs, d := loadPushPlan(f, pw, pb)
		diags = append(diags, d...)
		api.Push = subs
	}
	plans, d := loadPlans(f, where, requestPlans)
	diags = append(diags, d...)
	api.Plans = plans
	if len(requestPlans) == 0 {
		api.Plans = []plan.Config{{Type: plan.TypeKeyless}}
	}
	diags = append(diags, prefixed(where, duplicateBlocks("limits", h.Limits))...)
	if len(h.Limits) > 0 {
		n, d := loadAPILimits(f, where+" > limits", h.Limits[0].Body)
		diags = append(diags, d...)
		api.MaxRequestBodyBytes = n
	}

	for _, e := range h.Entrypoints {
		api.Entrypoints = append(api.Entrypoints, &PluginBlock{
			Kind:      lifecycle.KindEntrypoint,
			Type:      e.Type,
			Body:      e.Body,
			Range:     e.DefRange,
			Where:     fmt.Sprintf("%s > entrypoint %q", where, e.Type),
			typeRange: e.TypeRange,
		})
	}
	endpointNames := map[string]hcl.Range{}
	for _, e := range h.Endpoints {
		ew := fmt.Sprintf("%s > endpoint %q %q", where, e.Type, e.Name)
		if prev, dup := endpointNames[e.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Duplicate endpoint name %q", ew, e.Name),
				Detail:   fmt.Sprintf("Another endpoint of this API is named %q at %s; endpoint names must be unique within an API.", e.Name, startString(prev)),
				Subject:  e.NameRange.Ptr(),
			})
		} else {
			endpointNames[e.Name] = e.NameRange
		}
		api.Endpoints = append(api.Endpoints, &PluginBlock{
			Kind:      lifecycle.KindEndpoint,
			Type:      e.Type,
			Name:      e.Name,
			Body:      e.Body,
			Range:     e.DefRange,
			Where:     ew,
			typeRange: e.TypeRange,
		})
	}
	// A block whose header failed to decode is not in the lists above, and
	// its own diagnostic already says why; "no entrypoint" would be noise.
	if len(h.Entrypoints) == 0 && !hasBlock(shell.Body, "entrypoint") {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": No entrypoint",
			Detail:   `An API needs at least one entrypoint block saying how clients reach it, e.g. entrypoint "http-post" {}.`,
			Subject:  shell.DefRange.Ptr(),
		})
	}
	if len(h.Endpoints) == 0 && !hasBlock(shell.Body, "endpoint") {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": No endpoint",
			Detail:   `An API needs at least one endpoint block naming its backend, e.g. endpoint "kafka" "default" { bootstrap_servers = "127.0.0.1:9092" }.`,
			Subject:  shell.DefRange.Ptr(),
		})
	}

	if pushPlan != nil {
		diags = append(diags, checkPush(where, api, pushPlan.NameRange)...)
		if len(requestPlans) == 0 {
			for _, e := range api.Entrypoints {
				if e.Type != PushEntrypoint {
					// Keyless by omission would open the HTTP entrypoints
					// to anyone because a push plan was added: say so.
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
						Summary: fmt.Sprintf("%s: No plan for the %q entrypoint", where, e.Type),
						Detail:  `A push plan authenticates no request. Declare the plan HTTP clients use, e.g. plan "keyless" {} or plan "api-key" { ... }.`,
						Subject: e.Range.Ptr()})
					break
				}
			}
		}
	}

	for _, fh := range h.Flows {
		flow, d := loadFlow(where, fh, f.eval)
		diags = append(diags, d...)
		api.Flows = append(api.Flows, flow)
	}

	cw := where + " > cors"
	diags = append(diags, prefixed(where, duplicateBlocks("cors", h.CORS))...)
	if len(h.CORS) > 0 {
		cors, d := loadCORS(cw, h.CORS[0], f.eval)
		diags = append(diags, d...)
		api.CORS = cors
	}
	return api, ctxRange, diags
}

// checkContextPath returns why p cannot be a context path, or "".
func checkContextPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("A context path starts with \"/\", e.g. %q.", "/"+strings.TrimLeft(p, "/"))
	case p != "/" && strings.HasSuffix(p, "/"):
		return fmt.Sprintf("A context path does not end with \"/\" (except \"/\" itself); write %q.", strings.TrimRight(p, "/"))
	case strings.Contains(p, "//"):
		return `A context path has no empty segments ("//").`
	case strings.ContainsAny(p, "?#"):
		return "A context path holds no query (?) or fragment (#)."
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return "A context path holds no spaces or control characters."
		}
	}
	return ""
}

// Flow selector arguments, as HCL names them.
const (
	attrPath         = "path"
	attrPathOperator = "path_operator"
	attrMethods      = "methods"
	attrCondition    = "condition"
)

// flowArguments lists a flow's selector arguments, in the order diagnostics
// mention them.
var flowArguments = []string{attrPath, attrPathOperator, attrMethods, attrCondition}

// Step meta-arguments: taken by the core from any policy block and never
// passed to the plugin, as Terraform's count and depends_on.
const (
	metaEnabled          = "enabled"
	metaCondition        = "condition"
	metaMessageCondition = "message_condition"
)

// MetaArguments lists the step meta-arguments; a policy plugin cannot
// declare attributes with these names.
var MetaArguments = []string{metaEnabled, metaCondition, metaMessageCondition}

// loadFlow decodes one flow block: its selectors and its phases. Phase names
// get their own diagnostic (listing the phases) instead of HCL's generic
// "Unsupported block type".
func loadFlow(apiWhere string, fh *flowHCL, eval *hcl.EvalContext) (*Flow, hcl.Diagnostics) {
	where := fmt.Sprintf("%s > flow %q", apiWhere, fh.Name)
	fl := &Flow{Name: fh.Name, Phases: map[string][]*PluginBlock{}, Range: fh.DefRange}
	schema := &hcl.BodySchema{}
	for _, a := range flowArguments {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: a})
	}
	for _, p := range Phases {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: p})
	}
	var content *hcl.BodyContent
	var diags hcl.Diagnostics
	if sb, ok := fh.Body.(*hclsyntax.Body); ok {
		content, _, diags = sb.PartialContent(schema)
		for _, a := range sortedAttributes(sb) {
			if contains(flowArguments, a.Name) {
				continue
			}
			detail := fmt.Sprintf("A flow holds the selectors %s and phase blocks (%s); %q is not expected here.",
				strings.Join(flowArguments, ", "), strings.Join(Phases, ", "), a.Name)
			if s := suggest(a.Name, flowArguments); s != "" {
				detail = fmt.Sprintf("Did you mean %q? %s", s, detail)
			} else if contains(MetaArguments, a.Name) {
				detail += fmt.Sprintf(" %q is a step meta-argument: put it inside a policy block.", a.Name)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsupported argument",
				Detail:   detail,
				Subject:  a.NameRange.Ptr(),
			})
		}
		for _, b := range sb.Blocks {
			if contains(Phases, b.Type) {
				continue
			}
			detail := fmt.Sprintf("A flow holds the phases %s.", strings.Join(Phases, ", "))
			if s := suggest(b.Type, Phases); s != "" {
				detail = fmt.Sprintf("Did you mean %q? %s", s, detail)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Unknown phase %q", b.Type),
				Detail:   detail,
				Subject:  b.TypeRange.Ptr(),
			})
		}
	} else {
		content, diags = fh.Body.Content(schema)
	}
	diags = prefixed(where, diags)
	if content == nil {
		return fl, diags
	}
	diags = append(diags, loadSelector(where, fl, content.Attributes, eval)...)

	seen := map[string]hcl.Range{}
	policySchema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "policy", LabelNames: []string{"type"}}}}
	for _, pb := range content.Blocks {
		phase := pb.Type
		pw := where + " > " + phase
		if prev, dup := seen[phase]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Duplicate %s phase", where, phase),
				Detail:   fmt.Sprintf("This flow already has a %s block at %s; put all its %s policies there, in the order they run.", phase, startString(prev), phase),
				Subject:  pb.TypeRange.Ptr(),
			})
			continue
		}
		seen[phase] = pb.TypeRange
		pc, d := pb.Body.Content(policySchema)
		diags = append(diags, prefixed(pw, d)...)
		policies := []*PluginBlock{}
		if pc != nil {
			for _, b := range pc.Blocks {
				if len(b.Labels) != 1 {
					continue
				}
				block := &PluginBlock{
					Kind:      lifecycle.KindPolicy,
					Type:      b.Labels[0],
					Body:      b.Body,
					Range:     b.DefRange,
					Where:     fmt.Sprintf("%s > policy %q", pw, b.Labels[0]),
					typeRange: b.LabelRanges[0],
				}
				diags = append(diags, loadStepMeta(phase, block, eval)...)
				policies = append(policies, block)
			}
		}
		fl.Phases[phase] = policies
	}
	return fl, diags
}

// loadSelector compiles a flow's path, path_operator, methods and condition.
func loadSelector(where string, fl *Flow, attrs hcl.Attributes, eval *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var path, op string
	var pathOK bool
	var pathRange hcl.Range
	if a := attrs[attrPath]; a != nil {
		var d hcl.Diagnostics
		path, pathOK, d = evalString(where, a.Expr, eval)
		diags = append(diags, d...)
		pathRange = a.Expr.Range()
	}
	if a := attrs[attrPathOperator]; a != nil {
		s, ok, d := evalString(where, a.Expr, eval)
		diags = append(diags, d...)
		if ok {
			if !contains(flow.Operators, s) {
				detail := fmt.Sprintf("Allowed values are %s (the default).", quoteList(flow.Operators))
				if sug := suggest(s, flow.Operators); sug != "" {
					detail = fmt.Sprintf("Did you mean %q? %s", sug, detail)
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("%s: Invalid path_operator %q", where, s),
					Detail:   detail,
					Subject:  a.Expr.Range().Ptr(),
				})
				pathOK = false
			} else {
				op = s
			}
			if attrs[attrPath] == nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  where + ": path_operator without a path",
					Detail:   `path_operator says how the flow's path matches; add a path, e.g. path = "/:topic", or remove path_operator.`,
					Subject:  a.NameRange.Ptr(),
				})
			}
		}
	}
	if pathOK {
		p, err := flow.CompilePath(path, op)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Invalid path %q", where, path),
				Detail:   capitalize(err.Error()) + ".",
				Subject:  pathRange.Ptr(),
			})
		} else {
			fl.Selector.Path = p
		}
	}
	if a := attrs[attrMethods]; a != nil {
		diags = append(diags, loadMethods(where, fl, a, eval)...)
	}
	if a := attrs[attrCondition]; a != nil {
		t, d := loadCondition(where, attrCondition, a, eval)
		diags = append(diags, d...)
		fl.Selector.Condition = t
	}
	return diags
}

func loadMethods(where string, fl *Flow, a *hcl.Attribute, eval *hcl.EvalContext) hcl.Diagnostics {
	v, diags := a.Expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return diags
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !lv.IsWhollyKnown() {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  where + ": Invalid methods",
			Detail:   `methods is a list of HTTP methods, e.g. methods = ["GET", "POST"].`,
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	seen := map[string]bool{}
	for it := lv.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if ev.IsNull() {
			continue
		}
		m := ev.AsString()
		if !contains(flow.Methods, m) {
			detail := fmt.Sprintf("Allowed methods are %s.", quoteList(flow.Methods))
			if up := strings.ToUpper(m); contains(flow.Methods, up) {
				detail = fmt.Sprintf("HTTP methods are case-sensitive: write %q. %s", up, detail)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: Unknown method %q", where, m),
				Detail:   detail,
				Subject:  a.Expr.Range().Ptr(),
			})
			continue
		}
		if !seen[m] {
			seen[m] = true
			fl.Selector.Methods = append(fl.Selector.Methods, m)
		}
	}
	return diags
}

// loadCondition compiles a condition or message_condition. A condition is
// EL: a plain string would be always true or always false, which is what
// enabled (or no condition) says more plainly.
func loadCondition(where, name string, a *hcl.Attribute, eval *hcl.EvalContext) (*el.Template, hcl.Diagnostics) {
	src, ok, diags := evalString(where, a.Expr, eval)
	if !ok {
		return nil, diags
	}
	if !el.HasEL(src) {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: %s is not an EL expression", where, name),
			Detail:   fmt.Sprintf(`A %s is an EL expression evaluating to true or false, e.g. "{#request.headers['X-Tenant'] != null}".`, name),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	t, err := el.Compile(src)
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s: Invalid %s", where, name),
			Detail:   err.Error() + ".",
			Subject:  elErrorRange(a.Expr, src, err).Ptr(),
		})
	}
	return t, diags
}

// elErrorRange narrows an EL error to its column when the attribute is a
// plain quoted string whose source is exactly the value (no escapes, no
// interpolation), so file:line:col points at the mistake itself; otherwise
// it is the whole value.
func elErrorRange(expr hcl.Expression, src string, err error) hcl.Range {
	rng := expr.Range()
	var ee *el.Error
	if !errors.As(err, &ee) || ee.Column < 1 {
		return rng
	}
	te, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || len(te.Parts) != 1 || rng.Start.Line != rng.End.Line || rng.End.Byte-rng.Start.Byte != len(src)+2 {
		return rng
	}
	if _, lit := te.Parts[0].(*hclsyntax.LiteralValueExpr); !lit {
		return rng
	}
	// Columns count runes on both sides; the opening quote is one.
	byteOff := 0
	for i := range src {
		if utf8.RuneCountInString(src[:i]) == ee.Column-1 {
			byteOff = i
			break
		}
	}
	pos := hcl.Pos{Line: rng.Start.Line, Column: rng.Start.Column + ee.Column, Byte: rng.Start.Byte + 1 + byteOff}
	return hcl.Range{Filename: rng.Filename, Start: pos, End: rng.End}
}

// loadStepMeta takes a policy block's meta-arguments out of its body, so the
// plugin's schema never sees them, and compiles them.
func loadStepMeta(phase string, pb *PluginBlock, eval *hcl.EvalContext) hcl.Diagnostics {
	schema := &hcl.BodySchema{}
	for _, m := range MetaArguments {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: m})
	}
	content, remain, diags := pb.Body.PartialContent(schema)
	diags = prefixed(pb.Where, diags)
	if remain != nil {
		pb.Body = remain
	}
	if content == nil {
		return diags
	}
	if a := content.Attributes[metaEnabled]; a != nil {
		v, d := a.Expr.Value(eval)
		diags = append(diags, prefixed(pb.Where, d)...)
		if !d.HasErrors() && !v.IsNull() {
			bv, err := convert.Convert(v, cty.Bool)
			if err != nil || !bv.IsKnown() {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  pb.Where + ": Invalid enabled",
					Detail:   "enabled is true or false (load time, not EL); use condition or message_condition to decide per request or per message.",
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				pb.Disabled = bv.False()
			}
		}
	}
	perRequest := phase == PhaseRequest || phase == PhaseResponse
	if a := content.Attributes[metaCondition]; a != nil {
		if !perRequest {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: condition does not apply in the %s phase", pb.Where, phase),
				Detail:   "In the publish and subscribe phases a step decides per message: write message_condition instead, or put the condition on the flow.",
				Subject:  a.NameRange.Ptr(),
			})
		} else {
			t, d := loadCondition(pb.Where, metaCondition, a, eval)
			diags = append(diags, d...)
			pb.Condition = t
		}
	}
	if a := content.Attributes[metaMessageCondition]; a != nil {
		if perRequest {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s: message_condition does not apply in the %s phase", pb.Where, phase),
				Detail:   fmt.Sprintf("The %s phase runs once per request, with no message: write condition instead.", phase),
				Subject:  a.NameRange.Ptr(),
			})
		} else {
			t, d := loadCondition(pb.Where, metaMessageCondition, a, eval)
			diags = append(diags, d...)
			pb.MessageCondition = t
		}
	}
	return diags
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// evalString evaluates an optional string attribute. ok is false when the
// attribute is absent or null, or when its value is unusable (diags then
// says why).
func evalString(where string, expr hcl.Expression, eval *hcl.EvalContext) (s string, ok bool, diags hcl.Diagnostics) {
	if expr == nil {
		return "", false, nil
	}
	v, diags := expr.Value(eval)
	diags = prefixed(where, diags)
	if diags.HasErrors() || v.IsNull() {
		return "", false, diags
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil || !sv.IsKnown() || sv.IsNull() {
		msg := "a string is required"
		if err != nil {
			msg = err.Error()
		}
		return "", false, append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     where + ": Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value: %s.", msg),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: eval,
		})
	}
	return sv.AsString(), true, diags
}

// requireString is evalString for a required attribute: absent and null are
// both reported. (gohcl leaves expression fields optional, giving a null
// expression at the body's start when the attribute is absent.)
func requireString(where, name string, expr hcl.Expression, eval *hcl.EvalContext) (string, bool, hcl.Diagnostics) {
	s, ok, diags := evalString(where, expr, eval)
	if ok || diags.HasErrors() || expr == nil {
		return s, ok, diags
	}
	return "", false, append(diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  where + ": Missing required argument",
		Detail:   fmt.Sprintf("The argument %q is required, but no definition was found.", name),
		Subject:  expr.Range().Ptr(),
	})
}

// emptyBody reports anything inside a body that must be empty.
func emptyBody(body hcl.Body) hcl.Diagnostics {
	if body == nil {
		return nil
	}
	_, diags := body.Content(&hcl.BodySchema{})
	return diags
}

// hasBlock reports whether a native-syntax body holds a block of type typ,
// decodable or not.
func hasBlock(body hcl.Body, typ string) bool {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return false
	}
	for _, b := range sb.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}

// sortedAttributes returns a body's attributes in source order, so
// diagnostics come out in a stable order.
func sortedAttributes(sb *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(sb.Attributes))
	for _, a := range sb.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	return attrs
}
