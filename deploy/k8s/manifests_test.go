package k8s_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/datarights/datarights/api"
	"github.com/datarights/datarights/config"
)

const (
	overlayDir = "overlays/example"
	baseDir    = "base"
	// configKey is the configuration file's key in the ConfigMap.
	configKey = "datarights.yaml"
)

// object is one built resource: its raw YAML and its decoded type.
type object struct {
	apiVersion, kind, namespace, name string
	yaml                              []byte
	typed                             any
}

// build runs kustomize on dir, as `kubectl kustomize dir` would, and
// decodes every object strictly.
func build(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s/%s: %v", r.GetKind(), r.GetName(), err)
		}
		o := object{apiVersion: r.GetApiVersion(), kind: r.GetKind(), namespace: r.GetNamespace(), name: r.GetName(), yaml: y}
		if o.typed, err = decodeStrict(o.apiVersion, o.kind, y); err != nil {
			t.Errorf("%s %s/%s: %v\n%s", dir, o.kind, o.name, err, y)
		}
		objs = append(objs, o)
	}
	return objs
}

// decodeStrict decodes y into the Go type of its kind as the API server
// does: field names match case-sensitively (encoding/json would take
// "targetport" for targetPort), and a field the API does not have (a typo,
// a wrong indentation) or one given twice is an error, as is a kind this
// test does not know.
func decodeStrict(apiVersion, kind string, y []byte) (any, error) {
	var v any
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		v = &corev1.Namespace{}
	case "v1 ServiceAccount":
		v = &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		v = &corev1.ConfigMap{}
	case "v1 Secret":
		v = &corev1.Secret{}
	case "v1 Service":
		v = &corev1.Service{}
	case "v1 PersistentVolumeClaim":
		v = &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		v = &appsv1.Deployment{}
	case "batch/v1 Job":
		v = &batchv1.Job{}
	case "policy/v1 PodDisruptionBudget":
		v = &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		v = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v = &monitoringv1.ServiceMonitor{}
	default:
		return nil, fmt.Errorf("no Go type known for %s %s: add it to decodeStrict", apiVersion, kind)
	}
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return nil, err
	}
	strict, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	return v, nil
}

// bundle is the example overlay, built, with its objects by kind and name.
type bundle struct {
	objs        []object
	namespace   string
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	pdbs        map[string]*policyv1.PodDisruptionBudget
	netpols     map[string]*networkingv1.NetworkPolicy
	monitors    map[string]*monitoringv1.ServiceMonitor
	// workloads are the pod templates that run the binary, by
	// "Deployment/name" or "Job/name".
	workloads map[string]*corev1.PodTemplateSpec
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{
		objs:        build(t, overlayDir),
		deployments: map[string]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
		services:    map[string]*corev1.Service{},
		secrets:     map[string]*corev1.Secret{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pvcs:        map[string]*corev1.PersistentVolumeClaim{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		netpols:     map[string]*networkingv1.NetworkPolicy{},
		monitors:    map[string]*monitoringv1.ServiceMonitor{},
		workloads:   map[string]*corev1.PodTemplateSpec{},
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, o := range b.objs {
		switch v := o.typed.(type) {
		case *corev1.Namespace:
			b.namespace = v.Name
		case *appsv1.Deployment:
			b.deployments[v.Name] = v
			b.workloads["Deployment/"+v.Name] = &v.Spec.Template
		case *batchv1.Job:
			b.jobs[v.Name] = v
			b.workloads["Job/"+v.Name] = &v.Spec.Template
		case *corev1.Service:
			b.services[v.Name] = v
		case *corev1.Secret:
			b.secrets[v.Name] = v
		case *corev1.ConfigMap:
			b.configMaps[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			b.pvcs[v.Name] = v
		case *policyv1.PodDisruptionBudget:
			b.pdbs[v.Name] = v
		case *networkingv1.NetworkPolicy:
			b.netpols[v.Name] = v
		case *monitoringv1.ServiceMonitor:
			b.monitors[v.Name] = v
		}
	}
	return b
}

// mustGet returns m[name] or fails the test.
func mustGet[T any](t *testing.T, m map[string]T, what, name string) T {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("no %s %q in the build", what, name)
	}
	return v
}

// binaryContainer is a workload's datarights container.
func binaryContainer(t *testing.T, pod *corev1.PodTemplateSpec) *corev1.Container {
	t.Helper()
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
		t.Fatalf("want one container, the binary's; have %d and %d init containers", len(pod.Spec.Containers), len(pod.Spec.InitContainers))
	}
	return &pod.Spec.Containers[0]
}

// env resolves the container's environment as the kubelet would: literal
// values and Secret keys. A reference to a missing Secret or key fails.
func (b *bundle) env(t *testing.T, where string, c *corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			t.Errorf("%s: envFrom other than a Secret", where)
			continue
		}
		s, ok := b.secrets[from.SecretRef.Name]
		if !ok {
			t.Errorf("%s: envFrom Secret %q is not in the build", where, from.SecretRef.Name)
			continue
		}
		for k, v := range s.Data {
			out[from.Prefix+k] = string(v)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := b.secrets[ref.Name]
			if !ok {
				t.Errorf("%s: env %s: Secret %q is not in the build", where, e.Name, ref.Name)
				continue
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				t.Errorf("%s: env %s: Secret %q has no key %q (it has %v)", where, e.Name, ref.Name, ref.Key, keys(s.Data))
				continue
			}
			out[e.Name] = string(v)
		default:
			t.Errorf("%s: env %s: only values and Secret keys are expected", where, e.Name)
		}
	}
	return out
}

// configFile is the configuration file the container's -config names, read
// from the ConfigMap mounted there. Without -config (the migration Job,
// which needs only its two URLs) it is nil: the configuration is then the
// defaults and the environment, as config.Parse reads an empty file.
func (b *bundle) configFile(t *testing.T, where string, pod *corev1.PodTemplateSpec, c *corev1.Container) []byte {
	t.Helper()
	i := slices.Index(c.Args, "-config")
	if i < 0 {
		if strings.HasPrefix(where, "Deployment/") {
			t.Fatalf("%s: args %q name no -config file", where, c.Args)
		}
		return nil
	}
	if i+1 >= len(c.Args) {
		t.Fatalf("%s: args %q: -config names no file", where, c.Args)
	}
	path := c.Args[i+1]
	for _, m := range c.VolumeMounts {
		if filepath.Dir(path) != m.MountPath {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := mustGet(t, b.configMaps, "ConfigMap", v.ConfigMap.Name)
			data, ok := cm.Data[filepath.Base(path)]
			if !ok {
				t.Fatalf("%s: -config %s: ConfigMap %s has no key %s", where, path, cm.Name, filepath.Base(path))
			}
			return []byte(data)
		}
	}
	t.Fatalf("%s: -config %s is on no ConfigMap volume", where, path)
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var (
	buildOnce sync.Once
	binDir    string
	binary    string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// datarightsBinary builds cmd/datarights once per test run: the
// manifests' commands are run against the real thing.
func datarightsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "datarights-k8s-"); binErr != nil {
			return
		}
		binary = filepath.Join(binDir, "datarights")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/datarights/datarights/cmd/datarights").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binary
}

// entrypoint is deploy/Dockerfile's ENTRYPOINT: where the image has the
// binary.
func entrypoint(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ENTRYPOINT "); ok {
			var ep []string
			if err := json.Unmarshal([]byte(rest), &ep); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
			return ep
		}
	}
	t.Fatal("deploy/Dockerfile has no ENTRYPOINT")
	return nil
}

// TestStrictDecoding: the decoder this test relies on refuses what the API
// server would not store — else every check below proves less than it says.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ apiVersion, kind, yaml string }{
		{"apps/v1", "Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"},
		{"v1", "Service", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - name: http\n      targetport: http\n"},
		{"monitoring.coreos.com/v1", "ServiceMonitor", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  endpoints:\n    - port: metrics\n      scrape_timeout: 10s\n"},
		{"v1", "Widget", "apiVersion: v1\nkind: Widget\n"},
	} {
		if _, err := decodeStrict(tc.apiVersion, tc.kind, []byte(tc.yaml)); err == nil {
			t.Errorf("%s decoded without error:\n%s", tc.kind, tc.yaml)
		}
	}
}

// TestBaseBuilds: the base alone builds and decodes (an overlay other than
// the example starts from it).
func TestBaseBuilds(t *testing.T) {
	t.Parallel()
	objs := build(t, baseDir)
	if len(objs) == 0 {
		t.Fatal("the base built nothing")
	}
	// Its configuration file is valid on its own, given the database.
	env := map[string]string{"DATABASE_URL": "postgres://datarights_app@db/datarights"}
	found := false
	for _, o := range objs {
		if cm, ok := o.typed.(*corev1.ConfigMap); ok {
			found = true
			if _, err := config.Parse(configKey, []byte(cm.Data[configKey]), func(k string) string { return env[k] }); err != nil {
				t.Errorf("base ConfigMap %s: %v", cm.Name, err)
			}
		}
	}
	if !found {
		t.Error("the base has no ConfigMap")
	}
}

// TestOverlayObjects: the example overlay holds what a deployment needs,
// everything in its namespace and on its image.
func TestOverlayObjects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.namespace == "" {
		t.Fatal("the example overlay creates no Namespace")
	}
	for _, o := range b.objs {
		if o.kind != "Namespace" && o.namespace != b.namespace {
			t.Errorf("%s/%s is in namespace %q, not %q", o.kind, o.name, o.namespace, b.namespace)
		}
	}
	mustGet(t, b.deployments, "Deployment", "datarights-serve")
	mustGet(t, b.deployments, "Deployment", "datarights-worker")
	mustGet(t, b.jobs, "Job", "datarights-migrate")
	mustGet(t, b.services, "Service", "datarights")
	mustGet(t, b.monitors, "ServiceMonitor", "datarights")
	if len(b.pdbs) == 0 || len(b.netpols) == 0 || len(b.configMaps) != 1 || len(b.pvcs) != 1 {
		t.Errorf("want PDBs, NetworkPolicies, one ConfigMap and one PVC; have %d, %d, %d, %d", len(b.pdbs), len(b.netpols), len(b.configMaps), len(b.pvcs))
	}
	for name, pod := range b.workloads {
		c := binaryContainer(t, pod)
		if c.Image != "registry.example.com/datarights:1.0.0" {
			t.Errorf("%s: image %q, not the overlay's", name, c.Image)
		}
	}
	if n := *mustGet(t, b.deployments, "Deployment", "datarights-worker").Spec.Replicas; n != 3 {
		t.Errorf("worker replicas %d, not the overlay's 3", n)
	}
	for _, pvc := range b.pvcs {
		if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
			t.Errorf("PVC %s: access modes %v: every serve and worker pod mounts data_dir, so ReadWriteMany", pvc.Name, pvc.Spec.AccessModes)
		}
		if pvc.Spec.StorageClassName == nil {
			t.Errorf("PVC %s: the overlay names no storage class", pvc.Name)
		}
	}
}

// TestCommands: every container runs the image's binary with a subcommand
// and flags the binary accepts — checked by running the built binary with
// the same arguments and -h, which parses them and stops before doing
// anything — and each workload runs the subcommand its name says.
func TestCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bin := datarightsBinary(t)
	ep := entrypoint(t)
	want := map[string][]string{
		"Deployment/datarights-serve":  {"serve"},
		"Deployment/datarights-worker": {"worker"},
		"Job/datarights-migrate":       {"migrate", "up"},
	}
	for name, pod := range b.workloads {
		c := binaryContainer(t, pod)
		if !slices.Equal(c.Command, ep) {
			t.Errorf("%s: command %q, not the image's ENTRYPOINT %q", name, c.Command, ep)
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: a workload this test does not know", name)
			continue
		}
		if len(c.Args) < len(w) || !slices.Equal(c.Args[:len(w)], w) {
			t.Errorf("%s: args %q, want %q first", name, c.Args, w)
			continue
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, append(slices.Clone(c.Args), "-h")...)
		cmd.Env = []string{} // -h reads no environment, and must not read this one's
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: datarights %s -h: %v\n%s%s", name, strings.Join(c.Args, " "), err, stdout.String(), stderr.String())
			continue
		}
		if prefix := "usage: datarights " + strings.Join(w, " "); !strings.HasPrefix(stdout.String(), prefix) {
			t.Errorf("%s: datarights %s -h printed %q, want %q…", name, strings.Join(c.Args, " "), stdout.String(), prefix)
		}
	}
	// The check itself: a subcommand or flag the binary does not have fails.
	for _, args := range [][]string{{"server", "-h"}, {"worker", "-conf", "x", "-h"}} {
		if err := exec.Command(bin, args...).Run(); err == nil {
			t.Errorf("datarights %q succeeded", args)
		}
	}
}

// TestEnvironment: every variable a container sets is one the binary's
// configuration reads (config.EnvNames, from the code), every Secret key
// referenced exists, every key of the Secrets is used, and only the
// migration Job has the migration role's URL.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	used := map[string]bool{}
	for name, pod := range b.workloads {
		c := binaryContainer(t, pod)
		file := b.configFile(t, name, pod, c)
		read, err := config.EnvNames(configKey, file)
		if err != nil {
			t.Fatal(err)
		}
		env := b.env(t, name, c)
		for k := range env {
			if !slices.Contains(read, k) {
				t.Errorf("%s sets %s, which datarights does not read with this configuration (it reads %v)", name, k, read)
			}
		}
		for _, e := range c.Env {
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				used[ref.SecretKeyRef.Name+"/"+ref.SecretKeyRef.Key] = true
			}
		}
		_, migrates := env[config.MigrateEnvVar]
		if isJob := strings.HasPrefix(name, "Job/"); migrates != isJob {
			t.Errorf("%s: %s set: %v; only the migration Job may connect as the migration role", name, config.MigrateEnvVar, migrates)
		}
	}
	for _, s := range b.secrets {
		for k := range s.Data {
			if !used[s.Name+"/"+k] {
				t.Errorf("Secret %s: key %s is used by no container", s.Name, k)
			}
		}
	}
}

// TestConfigValidates: each workload's configuration file, with the
// environment its container gets, passes the binary's own validation and
// what serve and worker check before they start; data_dir is on the shared
// volume, the only writable place but /tmp.
func TestConfigValidates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, pod := range b.workloads {
		c := binaryContainer(t, pod)
		file := b.configFile(t, name, pod, c)
		env := b.env(t, name, c)
		if strings.HasPrefix(name, "Job/") {
			// migrate up with both URLs in the environment reads no file:
			// it migrates on the migration role's URL and grants the role
			// DATABASE_URL connects as, which must be another.
			for _, k := range []string{"DATABASE_URL", config.MigrateEnvVar} {
				if u, err := url.Parse(env[k]); err != nil || u.Scheme != "postgres" {
					t.Errorf("%s: %s %q is not a postgres:// URL", name, k, env[k])
				}
			}
			if roleOf(t, env["DATABASE_URL"]) == roleOf(t, env[config.MigrateEnvVar]) {
				t.Errorf("%s: DATABASE_URL and %s connect as the same role", name, config.MigrateEnvVar)
			}
			continue
		}
		cfg, err := config.Parse(configKey, file, func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// What runServe checks before it connects.
		if cfg.Keys == nil {
			t.Errorf("%s: no DATARIGHTS_SECRET_KEY: serve and worker refuse to start", name)
		}
		if !cfg.HTTP.PublicURLSet {
			t.Errorf("%s: no http.public_url: serve and worker refuse to start", name)
		}
		if cfg.MigrateDatabaseURL != "" {
			t.Errorf("%s: has a migration URL; the Deployments run as the runtime role only", name)
		}
		if cfg.SMTP.URL == "" {
			t.Errorf("%s: no smtp.url: emails would go to the file outbox", name)
		}
		mount := mountOf(pod, c, cfg.DataDir)
		if mount == nil || mount.ReadOnly {
			t.Errorf("%s: data_dir %s is on no writable volume", name, cfg.DataDir)
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == mount.Name {
				if v.PersistentVolumeClaim == nil {
					t.Errorf("%s: data_dir is on volume %s, not the shared claim", name, v.Name)
				} else {
					mustGet(t, b.pvcs, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
	}
}

func roleOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		t.Fatalf("%q names no role", dsn)
	}
	return u.User.Username()
}

// mountOf is the volume mount path is on, if any.
func mountOf(pod *corev1.PodTemplateSpec, c *corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// listener is one address the process listens on: which port, and what
// the binary serves there (as api.MatchRoute sees it).
type listener struct {
	port int32
	deps api.Deps
}

// listeners are the addresses a serve or worker process with cfg listens
// on, as serveWith opens them: http.addr (the API on serve; probes only on
// a worker; /metrics too unless http.ops_addr is set) and http.ops_addr
// (probes and /metrics).
func listeners(t *testing.T, where string, cfg *config.Config, serve bool) map[string]listener {
	t.Helper()
	port := func(field, addr string) int32 {
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s: %s %q: %v", where, field, addr, err)
		}
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s: %s %q listens on one address only; the kubelet and Services reach the pod's IP", where, field, addr)
		}
		var n int32
		fmt.Sscan(p, &n)
		return n
	}
	metrics := http.NotFoundHandler()
	out := map[string]listener{}
	main := listener{port: port("http.addr", cfg.HTTP.Addr), deps: api.Deps{OpsOnly: !serve, Metrics: metrics}}
	if cfg.HTTP.OpsAddr != "" {
		main.deps.Metrics = nil
		out["metrics"] = listener{port: port("http.ops_addr", cfg.HTTP.OpsAddr), deps: api.Deps{OpsOnly: true, Metrics: metrics}}
	}
	out["http"] = main
	return out
}

// podListeners are the listeners of a Deployment's pods, by the name of
// the containerPort that exposes each; a containerPort that matches no
// listener fails.
func (b *bundle) podListeners(t *testing.T, name string) map[string]listener {
	t.Helper()
	pod := b.workloads[name]
	c := binaryContainer(t, pod)
	env := b.env(t, name, c)
	cfg, err := config.Parse(configKey, b.configFile(t, name, pod, c), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ls := listeners(t, name, cfg, c.Args[0] == "serve")
	out := map[string]listener{}
	for _, p := range c.Ports {
		l, ok := ls[p.Name]
		switch {
		case !ok:
			t.Errorf("%s: containerPort %s: the process has no listener of that name (%v)", name, p.Name, keys(ls))
		case l.port != p.ContainerPort:
			t.Errorf("%s: containerPort %s is %d; the configuration listens on %d", name, p.Name, p.ContainerPort, l.port)
		default:
			out[p.Name] = l
		}
	}
	return out
}

// resolvePort finds the listener a probe's or Service's port (a name or a
// number) reaches.
func resolvePort(ls map[string]listener, port intstr.IntOrString) (listener, bool) {
	if port.Type == intstr.String {
		l, ok := ls[port.StrVal]
		return l, ok
	}
	for _, l := range ls {
		if l.port == port.IntVal {
			return l, true
		}
	}
	return listener{}, false
}

// TestProbesAndPorts: containerPorts are the configuration's listen
// addresses, every Deployment has startup, liveness and readiness probes,
// and each probe's path is a route the binary serves on the port probed.
func TestProbesAndPorts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name := range b.deployments {
		name = "Deployment/" + name
		ls := b.podListeners(t, name)
		c := binaryContainer(t, b.workloads[name])
		probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		for kind, p := range probes {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", name, kind)
				continue
			}
			l, ok := resolvePort(ls, p.HTTPGet.Port)
			if !ok {
				t.Errorf("%s: %s probe port %s is no containerPort", name, kind, p.HTTPGet.Port.String())
				continue
			}
			if got := api.MatchRoute(l.deps, http.MethodGet, p.HTTPGet.Path); got != "GET "+p.HTTPGet.Path {
				t.Errorf("%s: %s probe GET %s on port %s reaches route %q", name, kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), got)
			}
		}
		if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness on %s, not /readyz (database and migrations)", name, p.HTTPGet.Path)
		}
		if p := c.LivenessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness on %s, not /healthz: a database outage must not restart every pod", name, p.HTTPGet.Path)
		}
	}
}

// selected are the workloads whose pods sel selects.
func (b *bundle) selected(sel labels.Selector) []string {
	var out []string
	for name, pod := range b.workloads {
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func labelSelector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() {
		t.Fatal("an empty selector selects everything")
	}
	return sel
}

// TestServicesAndMonitor: the API Service reaches serve pods' http.addr
// only; the ServiceMonitor selects the metrics Service, whose port reaches
// /metrics on every serve and worker pod (and not the migration Job's).
func TestServicesAndMonitor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantSelected := map[string][]string{
		"datarights":         {"Deployment/datarights-serve"},
		"datarights-metrics": {"Deployment/datarights-serve", "Deployment/datarights-worker"},
	}
	for _, svc := range b.services {
		got := b.selected(labels.SelectorFromSet(svc.Spec.Selector))
		if len(svc.Spec.Selector) == 0 || !slices.Equal(got, wantSelected[svc.Name]) {
			t.Errorf("Service %s selects %v, want %v", svc.Name, got, wantSelected[svc.Name])
		}
		for _, w := range got {
			ls := b.podListeners(t, w)
			for _, p := range svc.Spec.Ports {
				if _, ok := resolvePort(ls, p.TargetPort); !ok {
					t.Errorf("Service %s port %s: targetPort %s is no port of %s", svc.Name, p.Name, p.TargetPort.String(), w)
				}
			}
		}
	}
	apiSvc := mustGet(t, b.services, "Service", "datarights")
	for _, w := range wantSelected["datarights"] {
		ls := b.podListeners(t, w)
		for _, p := range apiSvc.Spec.Ports {
			if l, _ := resolvePort(ls, p.TargetPort); l.deps.Metrics != nil {
				t.Errorf("Service datarights port %s serves /metrics: it faces the public", p.Name)
			}
		}
	}

	for _, sm := range b.monitors {
		sel := labelSelector(t, &sm.Spec.Selector)
		if len(sm.Spec.NamespaceSelector.MatchNames) > 0 || sm.Spec.NamespaceSelector.Any {
			t.Errorf("ServiceMonitor %s looks beyond its own namespace", sm.Name)
		}
		var svcs []*corev1.Service
		for _, svc := range b.services {
			if sel.Matches(labels.Set(svc.Labels)) {
				svcs = append(svcs, svc)
			}
		}
		if len(svcs) != 1 || svcs[0].Name != "datarights-metrics" {
			t.Fatalf("ServiceMonitor %s selects %d Services, want datarights-metrics only", sm.Name, len(svcs))
		}
		svc := svcs[0]
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s is not headless: Prometheus would scrape a pod at random, not each", svc.Name)
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Fatalf("ServiceMonitor %s has no endpoints", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
			if i < 0 {
				t.Errorf("ServiceMonitor %s: port %q is not a port name of Service %s", sm.Name, ep.Port, svc.Name)
				continue
			}
			for _, w := range wantSelected[svc.Name] {
				l, ok := resolvePort(b.podListeners(t, w), svc.Spec.Ports[i].TargetPort)
				if !ok {
					continue // reported above
				}
				if got := api.MatchRoute(l.deps, http.MethodGet, ep.Path); got != "GET /metrics" {
					t.Errorf("ServiceMonitor %s: GET %s on %s reaches route %q, not /metrics", sm.Name, ep.Path, w, got)
				}
			}
		}
	}
}

// TestDisruptionBudgets: each PDB selects exactly one Deployment's pods,
// each Deployment selects its own pods, and no budget would block every
// drain (minAvailable below the replicas).
func TestDisruptionBudgets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	covered := map[string]bool{}
	for _, pdb := range b.pdbs {
		got := b.selected(labelSelector(t, pdb.Spec.Selector))
		if len(got) != 1 || !strings.HasPrefix(got[0], "Deployment/") {
			t.Errorf("PDB %s selects %v, want one Deployment's pods", pdb.Name, got)
			continue
		}
		covered[got[0]] = true
		d := b.deployments[strings.TrimPrefix(got[0], "Deployment/")]
		if m := pdb.Spec.MinAvailable; m != nil && (m.Type != intstr.Int || m.IntVal >= *d.Spec.Replicas) {
			t.Errorf("PDB %s: minAvailable %s with %d replicas lets no pod be evicted", pdb.Name, m.String(), *d.Spec.Replicas)
		}
		if m := pdb.Spec.MaxUnavailable; m != nil && m.Type == intstr.Int && m.IntVal < 1 {
			t.Errorf("PDB %s: maxUnavailable %d lets no pod be evicted", pdb.Name, m.IntVal)
		}
	}
	for name, d := range b.deployments {
		if !covered["Deployment/"+name] {
			t.Errorf("Deployment %s has no PodDisruptionBudget", name)
		}
		if got := b.selected(labelSelector(t, d.Spec.Selector)); !slices.Equal(got, []string{"Deployment/" + name}) {
			t.Errorf("Deployment %s's selector selects %v", name, got)
		}
	}
}

// TestPodSecurity: non-root, read-only root filesystem, no privilege
// escalation, no capabilities, no service account token, sized; every
// mount names a volume, every volume an object in the build.
func TestPodSecurity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, pod := range b.workloads {
		spec := pod.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a service account token", name)
		}
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod not runAsNonRoot with a user id", name)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: no RuntimeDefault seccomp profile", name)
		}
		c := binaryContainer(t, pod)
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no container securityContext", name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: root filesystem writable", name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: privilege escalation allowed", name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: capabilities not all dropped", name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s, limit %s", name, r, req.String(), lim.String())
			}
		}
		vols := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			vols[v.Name] = v
			switch {
			case v.ConfigMap != nil:
				mustGet(t, b.configMaps, "ConfigMap", v.ConfigMap.Name)
			case v.PersistentVolumeClaim != nil:
				mustGet(t, b.pvcs, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
			case v.EmptyDir != nil:
				if v.EmptyDir.SizeLimit == nil {
					t.Errorf("%s: emptyDir %s has no sizeLimit", name, v.Name)
				}
			default:
				t.Errorf("%s: volume %s of a kind this test does not check", name, v.Name)
			}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s: mount %s names no volume", name, m.Name)
			}
		}
	}
}

// TestNetworkPolicies: every port a policy opens is a port of the pods it
// selects, and it selects some.
func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, np := range b.netpols {
		got := b.selected(labelSelector(t, &np.Spec.PodSelector))
		if len(got) == 0 {
			t.Errorf("NetworkPolicy %s selects no pods", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil || p.Port.Type != intstr.String {
					t.Errorf("NetworkPolicy %s: ports by name, so they follow the containerPorts", np.Name)
					continue
				}
				found := false
				for _, w := range got {
					for _, cp := range binaryContainer(t, b.workloads[w]).Ports {
						found = found || cp.Name == p.Port.StrVal
					}
				}
				if !found {
					t.Errorf("NetworkPolicy %s: port %s is a port of none of %v", np.Name, p.Port.StrVal, got)
				}
			}
		}
	}
}
