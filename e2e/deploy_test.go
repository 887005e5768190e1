package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The deployment recipes of docs/deploy/ (README.md there) are tested here,
// so they cannot rot silently: the systemd unit, the container recipe and
// the production configuration.

// deployDir is docs/deploy of this checkout.
const deployDir = "../docs/deploy"

// unitFile is a parsed systemd unit: section -> key -> values, in order.
type unitFile map[string]map[string][]string

// parseUnit reads the subset of the unit syntax the recipe uses: sections,
// key=value lines, comments.
func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// The systemd unit runs the gateway as an unprivileged user, reloads with
// SIGHUP, restarts on failure and is hardened; systemd-analyze, where it
// exists, finds nothing wrong with it and rates its exposure low.
func TestDeploySystemdUnit(t *testing.T) {
	path := filepath.Join(deployDir, "sluice.service")
	u := parseUnit(t, path)
	svc := u["Service"]
	want := map[string]string{
		"ExecStart":        "/opt/sluice/sluice run /etc/sluice/gateway.hcl",
		"ExecReload":       "/bin/kill -HUP $MAINPID",
		"Restart":          "on-failure",
		"NoNewPrivileges":  "yes",
		"ProtectSystem":    "strict",
		"ProtectHome":      "yes",
		"PrivateTmp":       "yes",
		"KillMode":         "mixed",
		"SystemCallFilter": "@system-service",
	}
	for k, v := range want {
		if got := svc[k]; !slices.Contains(got, v) {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	if users := svc["User"]; len(users) != 1 || users[0] == "" || users[0] == "root" || users[0] == "0" {
		t.Errorf("[Service] User = %q, want one unprivileged user", users)
	}
	if u["Install"]["WantedBy"] == nil {
		t.Error("no [Install] WantedBy: the unit cannot be enabled")
	}
	if t.Failed() {
		return
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (apt-get install systemd): the unit's keys were checked, `systemd-analyze verify` was not run")
	}
	// verify checks that ExecStart exists and is executable: point it at
	// the binary just built rather than at /opt/sluice, which is not
	// installed on a build machine. Nothing else of the unit changes.
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "sluice.service")
	local := strings.ReplaceAll(string(src), "/opt/sluice/sluice ", filepath.Join(binDir(t), "sluice")+" ")
	if err := os.WriteFile(unit, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	// Unknown keys and bad values are warnings with exit status 0: any
	// output at all is a failure.
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure is rated 0 (locked down) to 10; the hardening options bring
	// the unit to under 2. --threshold fails above 2.5.
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=25", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
}

// dockerInstr is one instruction of a Dockerfile, continuation lines joined.
type dockerInstr struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// parseDockerfile returns the instructions of each stage, in order.
func parseDockerfile(t *testing.T, path string) [][]dockerInstr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]dockerInstr
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstr{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			return // ARG before the first FROM
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments, also inside a continued instruction
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// find returns the arguments of every instruction cmd of a stage.
func find(stage []dockerInstr, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// The container recipe is a multi-stage build whose runtime stage runs the
// gateway as a non-root user, with the plugins beside the binary and a
// health check on /ready; its build stage, run here with the local Go (the
// same commands, flags and environment, /out mapped to a directory of the
// test), makes static binaries that start and find their plugins.
func TestDeployDockerfile(t *testing.T) {
	path := filepath.Join(deployDir, "Dockerfile")
	stages := parseDockerfile(t, path)
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build and runtime", len(stages))
	}
	build, runtime := stages[0], stages[1]
	if from := build[0].Args; !strings.HasPrefix(from, "golang:") || !strings.HasSuffix(from, " AS build") {
		t.Errorf("build stage FROM %q, want golang:... AS build", from)
	}
	if from := runtime[0].Args; strings.Contains(from, "golang") {
		t.Errorf("runtime stage FROM %q: the toolchain does not belong in the image", from)
	}
	if w := find(build, "WORKDIR"); !slices.Equal(w, []string{"/src"}) || !slices.Contains(find(build, "COPY"), ". .") {
		t.Fatalf("build stage: WORKDIR %q, COPY %q; the check maps the checkout to /src with COPY . .", w, find(build, "COPY"))
	}
	if !slices.Contains(find(runtime, "COPY"), "--from=build /out/ /opt/sluice/") {
		t.Errorf("runtime COPY %q: want the build's /out/ in /opt/sluice/", find(runtime, "COPY"))
	}
	users := find(runtime, "USER")
	if len(users) != 1 {
		t.Fatalf("runtime USER %q, want one", users)
	}
	uid, err := strconv.Atoi(strings.SplitN(users[0], ":", 2)[0])
	if err != nil || uid == 0 {
		t.Errorf("runtime USER %q: want a numeric, non-root uid (Kubernetes' runAsNonRoot checks it)", users[0])
	}
	hc := find(runtime, "HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0], "http://127.0.0.1:18082/ready") {
		t.Errorf("HEALTHCHECK %q: want /ready on the default admin_listen", hc)
	}
	if ep := find(runtime, "ENTRYPOINT"); !slices.Equal(ep, []string{`["/opt/sluice/sluice"]`}) {
		t.Errorf("ENTRYPOINT %q", ep)
	}
	// The example the image ships must be what the health check assumes.
	prod, err := os.ReadFile(filepath.Join(deployDir, "gateway.prod.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prod), `env("SLUICE_ADMIN_LISTEN", "127.0.0.1:18082")`) {
		t.Error("gateway.prod.hcl's default admin_listen is not the health check's address")
	}
	ignore, err := os.ReadFile(path + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "bin"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), p) {
			t.Errorf("Dockerfile.dockerignore does not leave out %s", p)
		}
	}
	if t.Failed() {
		return
	}

	// Run the build stage: its ARG defaults and ENV, then its RUN lines.
	out := t.TempDir()
	env := os.Environ()
	const version = "deploy-check"
	for _, a := range find(build, "ARG") {
		k, v, _ := strings.Cut(a, "=")
		if k == "VERSION" {
			v = version
		}
		env = append(env, k+"="+v)
	}
	for _, e := range find(build, "ENV") {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			t.Fatalf("ENV %q: write ENV KEY=value", e)
		}
		env = append(env, k+"="+strings.Trim(v, `"`))
	}
	mount := regexp.MustCompile(`^(--mount=\S+\s+)+`)
	outPath := regexp.MustCompile(`(^|[\s"])/out\b`)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range find(build, "RUN") {
		script := outPath.ReplaceAllString(mount.ReplaceAllString(run, ""), "${1}"+out)
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir, cmd.Env = root, env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RUN %s\n%v\n%s", script, err, b)
		}
	}

	var plugins []string
	dirs, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() {
			plugins = append(plugins, "plugins/sluice-plugin-"+d.Name())
		}
	}
	for _, name := range append([]string{"sluice"}, plugins...) {
		f, err := elf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// A dynamically linked binary names its loader (PT_INTERP); the
		// runtime image's libc may not be the builder's.
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", name)
			}
		}
		f.Close()
	}
	if b, err := exec.Command(filepath.Join(out, "sluice"), "version").CombinedOutput(); err != nil || !strings.Contains(string(b), version) {
		t.Errorf("sluice version: %v %s; want the VERSION argument stamped", err, b)
	}
	// The plugins beside the binary are found and start.
	b, err := exec.Command(filepath.Join(out, "sluice"), "plugins", filepath.Join(out, "plugins")).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice plugins: %v\n%s", err, b)
	}
	for _, typ := range []string{"kafka", "http-post", "sse", "websocket", "assign-attributes"} {
		if !strings.Contains(string(b), typ) {
			t.Errorf("sluice plugins does not list %s:\n%s", typ, b)
		}
	}
}

// prodEnv is the environment gateway.prod.hcl reads, as an operator sets it.
func prodEnv(t *testing.T) map[string]string {
	return map[string]string{
		"KAFKA_BOOTSTRAP":    "kafka-1.example:9093,kafka-2.example:9093",
		"KAFKA_USERNAME":     "sluice",
		"KAFKA_PASSWORD":     "s3cret",
		"ORDERS_KEY_SHOP":    "shop-key-0123456789",
		"ORDERS_KEY_BILLING": "billing-key-0123456789",
		"SLUICE_PLUGIN_DIR":  filepath.Join(binDir(t), "plugins"),
	}
}

// writeSelfSigned writes a self-signed P-256 certificate and its key as PEM.
func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice.example"},
		DNSNames:              []string{"sluice.example"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The production example, installed as the README says (the file, unchanged,
// with tls/ beside it and its secrets in the environment), passes `sluice
// validate`; without one of its secrets it is refused, naming the variable,
// so the secrets really come from env().
func TestDeployProdExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(deployDir, "gateway.prod.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`protocol = "SASL_SSL"`, `format     = "json"`, `plan "api-key"`, "tls {", "limits {"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("gateway.prod.hcl lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeSelfSigned(t, filepath.Join(dir, "tls", "gateway.crt"), filepath.Join(dir, "tls", "gateway.key"))
	writeSelfSigned(t, filepath.Join(dir, "tls", "kafka-ca.pem"), filepath.Join(dir, "tls", "kafka-ca.key"))

	validate := func(env map[string]string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir(t), "sluice"), "validate", path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	env := prodEnv(t)
	if out, err := validate(env); err != nil || !strings.Contains(out, "valid (1 APIs)") {
		t.Fatalf("sluice validate: %v\n%s", err, out)
	}
	delete(env, "KAFKA_PASSWORD")
	out, err := validate(env)
	if err == nil || !strings.Contains(out, `"KAFKA_PASSWORD" is not set`) {
		t.Fatalf("validate without KAFKA_PASSWORD: %v\n%s", err, out)
	}
}
